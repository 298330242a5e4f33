//! The audit log: every change an entry, paged by `GET /v1/audit` without secrets; the hash
//! chain detects an edited or removed entry and names it; expiries recorded once, also across
//! a restart.

use crate::helpers::{HOUR_MS, START_MS, TestApp, on_postgres, request_of};
use http::{Method, StatusCode};
use otpfleet_server::journal::{self, JournalError};
use otpfleet_server::{Catalogue, Clock as _, ManualClock, ServerConfig, open_durable};
use redb::{Database, ReadableTable, TableDefinition};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;

/// The journal's table, as the server writes it (tests edit it to play the intruder).
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// A record's header: length (4), time (8), link (32).
const HEADER: usize = 44;

/// Every entry of the log, read page by page with `limit`; checks that the pages neither
/// skip nor repeat an entry.
async fn whole_log(app: &TestApp, limit: usize) -> Vec<Value> {
    let mut entries: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/audit?limit={limit}&cursor={c}"),
            None => format!("/v1/audit?limit={limit}"),
        };
        let page = app.admin(Method::GET, &path, None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let got = page.body["entries"].as_array().unwrap().clone();
        assert!(got.len() <= limit);
        entries.extend(got);
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["seq"], i as u64 + 1, "pages skip or repeat: {e}");
    }
    entries
}

fn actions(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn every_change_is_an_audit_entry_in_order_and_none_holds_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_durable(dir.path()).await;
    let ids = app.import_rooms(3).await;
    let batch = app.generate_otps(&ids).await;
    let batch_id = batch["batch_id"].as_str().unwrap().to_owned();
    let otps: Vec<String> = (0..3)
        .map(|i| batch["generated"][i]["otp"].as_str().unwrap().to_owned())
        .collect();
    for with in ["false", "true"] {
        let path = format!("/v1/otp-batches/{batch_id}/export?include_passwords={with}");
        let export = app.admin(Method::GET, &path, None).await;
        assert_eq!(export.status, StatusCode::OK, "{}", export.text);
    }
    let with_passwords = app
        .admin(
            Method::GET,
            &format!("/v1/otp-batches/{batch_id}/export?include_passwords=true"),
            None,
        )
        .await
        .text;
    assert_eq!(app.set_preferences(24, false).await.status, StatusCode::OK);

    // Room 0: redeemed, approved, credentials collected.
    let vt = app.verification_token("SERIAL-A").await;
    let (request_a, poll_a) = request_of(&app.redeem(&otps[0], &vt).await);
    let approve = format!("/v1/requests/{request_a}/approve");
    assert_eq!(
        app.admin(Method::POST, &approve, None).await.status,
        StatusCode::OK
    );
    let signed_in = app.sign_in(&request_a, &poll_a).await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.text);
    let password = signed_in.body["password"].as_str().unwrap().to_owned();
    // Room 1: redeemed and rejected as the wrong room.
    let vt = app.verification_token("SERIAL-B").await;
    let (request_b, _) = request_of(&app.redeem(&otps[1], &vt).await);
    let reject = app
        .admin(
            Method::POST,
            &format!("/v1/requests/{request_b}/reject"),
            Some(json!({"reason": "wrong_room"})),
        )
        .await;
    assert_eq!(reject.status, StatusCode::OK, "{}", reject.text);
    // Room 2: never redeemed; it expires (batch OTPs were made with the default validity).
    let validity_h = u64::from(otpfleet_protocol::limits::VALIDITY_HOURS_DEFAULT);
    app.advance_hours(validity_h + 1);
    let served = app.app.served();
    assert_eq!(served.core.record_expiries(app.clock.now_ms()), 1);
    assert_eq!(
        served.core.record_expiries(app.clock.now_ms()),
        0,
        "an expiry is recorded once"
    );
    // The sweeper's entry is not acknowledged to anyone: wait until it is committed.
    let journal = served.journal.as_ref().unwrap();
    journal
        .wait_durable(served.core.journal_appended().unwrap())
        .await
        .unwrap();

    for limit in [1, 4, 1000] {
        let log = whole_log(&app, limit).await;
        assert_eq!(
            actions(&log),
            [
                "account_imported",
                "account_imported",
                "account_imported",
                "otp_generated",
                "otp_generated",
                "otp_generated",
                "batch_created",
                "batch_exported",
                "batch_exported",
                "batch_exported",
                "preferences_changed",
                "otp_redeemed",
                "request_approved",
                "credentials_handed_over",
                "otp_redeemed",
                "request_rejected",
                "otp_expired",
            ],
            "limit {limit}"
        );
        assert_eq!(log[7]["with_passwords"], false);
        assert_eq!(log[8]["with_passwords"], true);
        assert_eq!(log[7]["batch_id"], batch_id.as_str());
        assert_eq!(
            log[10]["preferences"],
            json!({"otp_validity_hours": 24, "auto_approve": false})
        );
        assert_eq!(log[11]["serial"], "SERIAL-A");
        assert_eq!(log[11]["request_id"], request_a.as_str());
        assert_eq!(log[11]["auto_approved"], false);
        assert_eq!(log[12]["request_id"], request_a.as_str());
        assert_eq!(log[13]["account_id"], ids[0].as_str());
        assert_eq!(log[15]["reason"], "wrong_room");
        assert_eq!(log[16]["account_id"], ids[2].as_str());
        assert_eq!(
            log[16]["expired_at"],
            otpfleet_server::clock::rfc3339(START_MS + validity_h * HOUR_MS)
        );
        // Admin changes name the token that made them; consoles and the sweeper are nobody.
        for e in &log {
            let by_admin = !matches!(
                e["action"].as_str().unwrap(),
                "otp_redeemed" | "credentials_handed_over" | "otp_expired"
            );
            let want = if by_admin {
                json!("token-file")
            } else {
                Value::Null
            };
            assert_eq!(e["by"], want, "{e}");
        }
        let text = serde_json::to_string(&log).unwrap();
        for secret in otps.iter().chain([&password]) {
            assert!(!text.contains(secret.as_str()), "the log shows {secret}");
        }
        for line in with_passwords.lines().skip(1) {
            let exported_password = line.rsplit(',').next().unwrap();
            assert!(!text.contains(exported_password));
        }
        let mut hashes: Vec<&str> = log.iter().map(|e| e["hash"].as_str().unwrap()).collect();
        assert!(hashes.iter().all(|h| h.len() == 64));
        hashes.dedup();
        assert_eq!(hashes.len(), log.len());
    }

    // /metrics counts the log and the commits that wrote it (concurrent changes share one).
    let metrics = app.send(Method::GET, "/metrics", None, None, "").await.text;
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} in /metrics:\n{metrics}"))
    };
    assert_eq!(value("otpfleet_journal_entries"), 17.0);
    let commits = value("otpfleet_journal_commits_total");
    assert!((1.0..=17.0).contains(&commits), "{commits}");
    assert!(value("otpfleet_journal_commit_seconds_total") > 0.0);
}

#[tokio::test]
async fn audit_queries_are_checked_and_an_in_memory_server_says_it_keeps_no_log() {
    let memory = TestApp::spawn().await;
    let a = memory.admin(Method::GET, "/v1/audit", None).await;
    let metrics = memory
        .send(Method::GET, "/metrics", None, None, "")
        .await
        .text;
    assert!(
        !metrics.contains("otpfleet_journal"),
        "no journal, no journal metrics"
    );
    // A replica on PostgreSQL keeps its log in the database (`tests/it/replicas.rs`).
    if !on_postgres() {
        assert_eq!(a.status, StatusCode::CONFLICT);
        assert_eq!(a.error_code(), "audit_unavailable");
        assert!(a.text.contains("--data-dir"), "{}", a.text);
    }

    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_durable(dir.path()).await;
    let empty = app.admin(Method::GET, "/v1/audit", None).await;
    assert_eq!(empty.status, StatusCode::OK);
    assert_eq!(empty.body, json!({"entries": []}));
    for bad in [
        "cursor=abc",
        "limit=0",
        "limit=1001",
        "after=3",
        "cursor=1&cursor=2",
    ] {
        let a = app
            .admin(Method::GET, &format!("/v1/audit?{bad}"), None)
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.text);
        assert_eq!(a.error_code(), "invalid_query", "{bad}");
    }
    for far in ["99999", "18446744073709551615"] {
        let past_the_end = app
            .admin(Method::GET, &format!("/v1/audit?cursor={far}"), None)
            .await;
        assert_eq!(past_the_end.body, json!({"entries": []}), "cursor {far}");
    }
    // A bad query is named by an in-memory server too.
    let a = memory.admin(Method::GET, "/v1/audit?cursor=x", None).await;
    assert_eq!(a.error_code(), "invalid_query");
}

/// Opens `dir` as a server would, with the clock at `now_ms`.
fn open_at(dir: &Path, now_ms: u64) -> Result<otpfleet_server::Durable, JournalError> {
    open_durable(
        dir,
        ServerConfig::default(),
        Catalogue::builtin(),
        Arc::new(ManualClock::new(now_ms)),
    )
}

/// A data directory holding `n` accounts with an OTP each, closed.
async fn directory_with(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_durable(dir.path()).await;
    let ids = app.import_rooms(n).await;
    for id in &ids {
        app.generate_otps(std::slice::from_ref(id)).await;
    }
    app.stop().await;
    dir
}

#[tokio::test]
async fn expiry_is_recorded_once_across_a_restart() {
    let dir = directory_with(2).await;
    let later = START_MS + 73 * HOUR_MS;
    {
        let d = open_at(dir.path(), later).unwrap();
        assert_eq!(d.core.record_expiries(later), 2);
        d.journal
            .wait_durable(d.core.journal_appended().unwrap())
            .await
            .unwrap();
    }
    let d = open_at(dir.path(), later).unwrap();
    assert_eq!(d.core.record_expiries(later + HOUR_MS), 0);
}

/// Rewrites the journal with `edit` applied to the record `seq` (its bytes, header
/// included); `None` removes the record.
fn tamper(dir: &Path, seq: u64, edit: impl FnOnce(&[u8]) -> Option<Vec<u8>>) {
    let db = Database::open(dir.join(journal::DB_FILE)).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(EVENTS).unwrap();
        let (first, row) = {
            let (k, v) = table.range(..=seq).unwrap().next_back().unwrap().unwrap();
            (k.value(), v.value().to_vec())
        };
        let mut out = Vec::new();
        let mut rest = row.as_slice();
        let mut at = first;
        let mut edit = Some(edit);
        while !rest.is_empty() {
            let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
            let (record, tail) = rest.split_at(HEADER + len);
            if at == seq {
                let edit = edit.take().unwrap();
                if let Some(changed) = edit(record) {
                    out.extend_from_slice(&changed);
                }
            } else {
                out.extend_from_slice(record);
            }
            at += 1;
            rest = tail;
        }
        table.insert(first, out.as_slice()).unwrap();
    }
    txn.commit().unwrap();
}

#[tokio::test]
async fn an_edited_entry_is_named_and_the_server_refuses_the_directory() {
    let dir = directory_with(3).await;
    let intact = journal::verify(dir.path()).unwrap();
    assert_eq!(intact.entries, 9, "3 imports, and 3 x (OTP, batch)");
    // Entry 6 is the second OTP; move it to another batch (valid JSON, other content).
    tamper(dir.path(), 6, |record| {
        let text = String::from_utf8(record[HEADER..].to_vec()).unwrap();
        let edited = text.replacen("\"batch\":2", "\"batch\":3", 1);
        assert_ne!(edited, text, "the edit changes the record");
        let mut out = record[..4].to_vec();
        out[..4].copy_from_slice(&u32::try_from(edited.len()).unwrap().to_le_bytes());
        out.extend_from_slice(&record[4..HEADER]);
        out.extend_from_slice(edited.as_bytes());
        Some(out)
    });
    match journal::verify(dir.path()) {
        Err(JournalError::Broken { seq, .. }) => assert_eq!(seq, 6),
        other => panic!("the edit went unnoticed: {other:?}"),
    }
    let refused = open_at(dir.path(), START_MS).expect_err("a server does not start on it");
    assert!(refused.to_string().contains("entry 6"), "{refused}");
}

#[tokio::test]
async fn a_removed_entry_is_named_wherever_it_was() {
    for removed in [1, 4, 9] {
        let dir = directory_with(3).await;
        let before = journal::verify(dir.path()).unwrap();
        tamper(dir.path(), removed, |_| None);
        match journal::verify(dir.path()) {
            // Removing the last entry leaves an intact, shorter chain: only the head link
            // kept elsewhere shows it.
            Ok(after) if removed == before.entries => {
                assert_eq!(after.entries, before.entries - 1);
                assert_ne!(after.head, before.head);
            }
            Err(JournalError::Broken { seq, .. }) => assert_eq!(seq, removed),
            other => panic!("removing entry {removed} went unnoticed: {other:?}"),
        }
    }
}
