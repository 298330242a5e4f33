//! `otpfleet admin-token` and `otpfleet audit verify` on a data directory, with the real server:
//! stored tokens open the admin routes until revoked, only their hashes are kept, every change
//! is an audit entry, and the offline check agrees with what the server answers.

use crate::otpfleet;
use otpfleet_client::{ApiRequest, HttpTransport, Transport as _};
use std::io::Read as _;
use std::path::Path;
use std::process::{Child, Output};
use std::time::Duration;

/// `otpfleet <command...> --data-dir DIR <rest...>`, run to its end.
fn run(command: &[&str], dir: &Path, rest: &[&str]) -> Output {
    otpfleet()
        .args(command)
        .arg("--data-dir")
        .arg(dir)
        .args(rest)
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Adds a token named `name`; answers the token, checking the note names `id`.
fn add(dir: &Path, name: &str, id: &str) -> String {
    let out = run(&["admin-token", "add"], dir, &["--name", name]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "add {name}: {stderr}");
    assert!(stderr.contains(id), "the note names {id}: {stderr}");
    let stdout = text(&out.stdout);
    let token = stdout.trim();
    assert_eq!(stdout.lines().count(), 1, "one line, the token: {stdout:?}");
    assert!(token.len() >= 32, "a long token: {token:?}");
    assert!(!token.chars().any(char::is_whitespace), "{token:?}");
    token.to_owned()
}

fn list(dir: &Path) -> String {
    let out = run(&["admin-token", "list"], dir, &[]);
    assert!(out.status.success(), "list: {}", text(&out.stderr));
    text(&out.stdout)
}

/// `audit verify`: (exit code, stdout, stderr).
fn verify(dir: &Path) -> (Option<i32>, String, String) {
    let out = run(&["audit", "verify"], dir, &[]);
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// The entry count and head of an intact chain, from `audit verify`'s line.
fn verified(dir: &Path) -> (u64, String) {
    let (code, stdout, stderr) = verify(dir);
    assert_eq!(code, Some(0), "verify: {stdout}{stderr}");
    let prefix = format!("{}: ", dir.display());
    let rest = stdout
        .trim_end()
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("names the directory: {stdout:?}"));
    let (count, head) = rest
        .split_once(" entries, chain intact; head ")
        .unwrap_or_else(|| panic!("count and head: {stdout:?}"));
    assert_eq!(head.len(), 64, "a SHA-256 in hex: {head:?}");
    assert!(
        head.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')),
        "lower-case hex: {head:?}"
    );
    (count.parse().expect("a count"), head.to_owned())
}

/// A server on a data directory; killed if a test fails before it is stopped.
struct Server {
    child: Option<Child>,
    url: String,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let (mut child, line) = crate::serve(["--data-dir".as_ref(), dir.as_os_str()]);
        let Some(url) = line.strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut stderr);
            }
            panic!("the server did not start: {line:?} {stderr}");
        };
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        Server {
            url: url.to_owned(),
            child: Some(child),
        }
    }

    /// `GET path` with `token` as bearer (if any): status and body.
    fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let transport = HttpTransport::new(&self.url, 1, Duration::from_secs(10))
                .expect("a loopback http:// URL");
            let mut req = ApiRequest::get(path);
            if let Some(token) = token {
                req = req.with_bearer(token);
            }
            let res = transport.send(req).await.expect("the server answers");
            (res.status, text(&res.body))
        })
    }

    /// SIGTERM, then waits: the directory is unlocked when this returns.
    fn stop(mut self) -> String {
        crate::stop(self.child.take().expect("running"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The audit entries a server answers (every page).
fn audit(server: &Server, token: &str) -> (Vec<serde_json::Value>, String) {
    let mut entries = Vec::new();
    let mut bodies = String::new();
    let mut path = "/v1/audit".to_owned();
    loop {
        let (status, body) = server.get(&path, Some(token));
        assert_eq!(status, 200, "GET {path}: {body}");
        let page: serde_json::Value = serde_json::from_str(&body).expect("json");
        entries.extend(page["entries"].as_array().expect("entries").iter().cloned());
        bodies.push_str(&body);
        match page.get("next_cursor").and_then(|c| c.as_str()) {
            Some(cursor) => path = format!("/v1/audit?cursor={cursor}"),
            None => break,
        }
        assert!(entries.len() < 10_000, "the pages end");
    }
    (entries, bodies)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn a_token_added_in_the_data_directory_opens_the_admin_routes_and_a_revoked_one_does_not() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let first = add(&dir, "ci", "tok_1");

    let listed = list(&dir);
    let line = listed.lines().next().expect("a line");
    let fields: Vec<&str> = line.split('\t').collect();
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert_eq!(fields.len(), 3, "{line:?}");
    assert_eq!(fields[..2], ["tok_1", "ci"], "{line:?}");
    assert!(fields[2].starts_with("added 20"), "{line:?}");
    assert!(!listed.contains(&first), "list never shows a token");

    let server = Server::start(&dir);
    assert_eq!(server.get("/v1/accounts", Some(&first)).0, 200);
    assert_eq!(server.get("/v1/accounts", Some("not-the-token")).0, 401);
    assert_eq!(server.get("/v1/accounts", None).0, 401);
    server.stop();

    let out = run(&["admin-token", "revoke"], &dir, &["tok_1"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "revoke: {stderr}");
    assert!(stderr.contains("tok_1"), "{stderr}");
    let second = add(&dir, "deploy", "tok_2");
    assert_ne!(first, second);
    let listed = list(&dir);
    assert!(
        listed.starts_with("tok_2\tdeploy\tadded ") && listed.lines().count() == 1,
        "only tok_2 is in force: {listed}"
    );

    let server = Server::start(&dir);
    let (status, body) = server.get("/v1/accounts", Some(&first));
    assert_eq!(status, 401, "a revoked token is refused: {body}");
    assert_eq!(server.get("/v1/accounts", Some(&second)).0, 200);
    let (entries, bodies) = audit(&server, &second);
    server.stop();

    let seen: Vec<(u64, &str, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["seq"].as_u64().expect("seq"),
                e["action"].as_str().expect("action"),
                e["token_id"].as_str().expect("token_id"),
                e["token_name"].as_str().expect("token_name"),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (1, "admin_token_added", "tok_1", "ci"),
            (2, "admin_token_revoked", "tok_1", "ci"),
            (3, "admin_token_added", "tok_2", "deploy"),
        ],
        "{bodies}"
    );
    for e in &entries {
        let hash = e["hash"].as_str().expect("hash");
        assert_eq!(hash.len(), 64, "{e}");
        assert!(
            e["at"].as_str().is_some_and(|at| at.starts_with("20")),
            "{e}"
        );
    }
    for token in [&first, &second] {
        assert!(
            !bodies.contains(token.as_str()),
            "the audit log shows no token"
        );
    }

    let db = std::fs::read(dir.join("otpfleet.redb")).expect("the database file");
    assert!(!db.is_empty());
    for token in [&first, &second] {
        assert!(!contains(&db, token), "the database holds no token text");
    }
}

#[test]
fn audit_verify_reports_an_intact_chain_and_refuses_a_locked_or_missing_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let token = add(&dir, "ci", "tok_1");
    add(&dir, "backup", "tok_2");

    let server = Server::start(&dir);
    let (entries, _) = audit(&server, &token);

    let (code, stdout, stderr) = verify(&dir);
    assert_eq!(code, Some(1), "verify refuses a directory in use: {stdout}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("in use") && stderr.contains(&dir.display().to_string()),
        "says which directory is in use: {stderr}"
    );
    let out = run(&["admin-token", "add"], &dir, &["--name", "late"]);
    assert!(
        !out.status.success() && out.stdout.is_empty(),
        "no token is added to a directory a server holds: {}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("in use"),
        "{}",
        text(&out.stderr)
    );
    server.stop();

    let (count, head) = verified(&dir);
    assert_eq!(count, 2);
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(
        entries.last().expect("an entry")["hash"].as_str(),
        Some(head.as_str()),
        "the head is the hash of the last entry the server answered"
    );
    let (_, stdout, _) = verify(&dir);
    assert_eq!(
        stdout.trim_end(),
        format!("{}: 2 entries, chain intact; head {head}", dir.display())
    );

    let missing = tmp.path().join("no-such-dir");
    let (code, stdout, stderr) = verify(&missing);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains(&missing.display().to_string()),
        "names the directory: {stderr}"
    );
    assert!(!missing.exists(), "verify creates nothing");
}

#[test]
fn bad_token_commands_change_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    add(&dir, "ci", "tok_1");
    let before = verified(&dir);
    let listed = list(&dir);

    let out = run(&["admin-token", "revoke"], &dir, &["tok_9"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("tok_9"), "names the id: {stderr}");

    for name in ["", &"x".repeat(65)] {
        let out = run(&["admin-token", "add"], &dir, &["--name", name]);
        assert!(
            !out.status.success(),
            "name {name:?} is refused: {}",
            text(&out.stdout)
        );
        assert!(out.stdout.is_empty(), "no token printed for {name:?}");
        assert!(text(&out.stderr).contains("name"), "{}", text(&out.stderr));
    }

    assert_eq!(verified(&dir), before, "no entry was added");
    assert_eq!(list(&dir), listed);
}

#[test]
fn revoke_on_a_mistyped_directory_creates_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let typo = tmp.path().join("dtaa");
    let out = run(&["admin-token", "revoke"], &typo, &["tok_1"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&typo.display().to_string()),
        "names the directory: {stderr}"
    );
    assert!(!typo.exists(), "revoke made {}: {stderr}", typo.display());
}
