//! Merging shards gives the whole run: the same counts and the very same histograms; runs that
//! are not shards of one run are refused, naming the folder and the difference.

use crate::{runs, schema};
use otpfleet_reports::{ReportError, Role, Step, merge_run_folders, read_run_folder, summarize};
use std::path::{Path, PathBuf};

fn shards(root: &Path, seed: u64, count: u32, consoles: u64) -> Vec<PathBuf> {
    (0..count)
        .map(|k| {
            let dir = root.join(format!("shard{k}"));
            runs::write(&dir, seed, (k, count), consoles);
            dir
        })
        .collect()
}

#[test]
fn merged_shards_equal_the_whole_run() {
    let root = tempfile::tempdir().unwrap();
    let whole_dir = root.path().join("whole");
    let whole = runs::write(&whole_dir, 9, (0, 1), 301);
    let dirs = shards(root.path(), 9, 3, 301);
    let out = root.path().join("merged");
    merge_run_folders::<runs::TestSettings>(&dirs, &out, &[]).unwrap();

    let (merged, histograms) = read_run_folder(&out).unwrap();
    let (_, whole_histograms) = read_run_folder(&whole_dir).unwrap();
    assert_eq!(merged.consoles, 301);
    assert_eq!(merged.outcomes, whole.outcomes);
    assert_eq!(merged.faults, whole.faults);
    assert_eq!(
        merged.errors["unexpected_answer: poll 500"], 3,
        "errors are summed"
    );
    // Lossless: the merged histograms are the whole run's, so every percentile is.
    // Interval by interval, to the byte of each encoded histogram.
    assert!(
        histograms == whole_histograms,
        "the merged logs are the whole run's"
    );
    assert_eq!(merged.latency_us, whole.latency_us);
    assert_eq!(merged.over_time, whole.over_time, "interval by interval");
    assert_eq!(merged.over_time.len(), 2);
    assert_eq!(merged.time_to_signed_in_s, whole.time_to_signed_in_s);
    assert_eq!(merged.throughput.requests, whole.throughput.requests);
    for (step, t) in &whole.throughput.steps {
        assert_eq!(merged.throughput.steps[step].counts, t.counts, "{step}");
    }
    assert_eq!(merged.throughput.measured_s, 5.5, "shards run side by side");
    assert_eq!(
        summarize(&histograms.steps[Step::Redeem.as_str()].service).count,
        301
    );
    assert_eq!((merged.shard.index, merged.shard.count), (0, 1));
    assert_eq!(merged.config, whole.config, "the shard is the whole run's");
    assert_eq!(merged.duration_s, 5.5, "the longest shard");
    let shards: Vec<(u32, u32, u64)> = merged
        .merged_from
        .iter()
        .map(|m| (m.shard.index, m.shard.count, m.seed))
        .collect();
    assert_eq!(shards, vec![(0, 3, 9), (1, 3, 9), (2, 3, 9)]);
    assert!(merged.merged_from[2].dir.ends_with("shard2"));
    let json = serde_json::to_value(&merged).unwrap();
    assert_eq!(schema::complaints(&json), Vec::<String>::new());
}

#[test]
fn runs_that_do_not_belong_together_are_refused_clearly() {
    let root = tempfile::tempdir().unwrap();
    let dirs = shards(root.path(), 9, 2, 100);
    let other_seed = root.path().join("seed10");
    runs::write(&other_seed, 10, (1, 2), 100);
    let other_config = root.path().join("typos");
    runs::write(&other_config, 9, (1, 2), 100);
    let path = other_config.join("report.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("\"typo\": 0.05", "\"typo\": 0.2")).unwrap();
    let out = root.path().join("out");

    let cases: Vec<(Vec<PathBuf>, Vec<String>)> = vec![
        (
            vec![dirs[0].clone(), other_seed.clone()],
            vec![other_seed.display().to_string(), "seed 10, not 9".into()],
        ),
        (
            vec![dirs[0].clone(), other_config.clone()],
            vec![
                other_config.display().to_string(),
                "rates.typo is 0.2 (not 0.05)".into(),
            ],
        ),
        (
            vec![dirs[0].clone(), dirs[0].clone()],
            vec!["shard 0/2 is given twice".into()],
        ),
        (vec![dirs[1].clone()], vec!["shard 0/2 missing".into()]),
        (
            vec![dirs[0].clone(), dirs[1].clone()],
            vec!["the output folder".into()],
        ),
    ];
    for (i, (given, expected)) in cases.into_iter().enumerate() {
        let target = if i == 4 { dirs[1].clone() } else { out.clone() };
        let err =
            merge_run_folders::<runs::TestSettings>(&given, &target, &[]).expect_err("refused");
        let text = err.to_string();
        for e in expected {
            assert!(text.contains(&e), "case {i}: {text:?} should say {e:?}");
        }
        assert!(!out.exists(), "case {i}: nothing written");
    }
}

#[test]
fn logs_that_do_not_match_their_report_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let dirs = shards(root.path(), 9, 2, 100);
    std::fs::remove_file(dirs[1].join("redeem.lateness.hlog")).unwrap();
    let err = merge_run_folders::<runs::TestSettings>(&dirs, &root.path().join("out"), &[])
        .expect_err("refused");
    assert!(matches!(err, ReportError::Hlog { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("redeem.lateness.hlog") && text.contains("holds 0 values"),
        "{text}"
    );
}

/// Sets a written run's role (and, for a console shard, no admins; for the admin process,
/// `admins` of them and the whole fleet's shard).
fn set_role(dir: &Path, role: &str, admins: u32) {
    let path = dir.join("report.json");
    let mut report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    report["shard"]["role"] = role.into();
    report["config"]["role"] = role.into();
    report["config"]["admins"] = admins.into();
    if role == "admins" {
        report["shard"]["index"] = 0.into();
        report["shard"]["count"] = 1.into();
        report["config"]["shard"] = serde_json::json!({"index": 0, "count": 1});
        // Its run has the fleet's consoles, though it runs none of them.
        report["config"]["consoles"] = 100.into();
    }
    std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
}

#[test]
fn a_split_run_merges_its_console_shards_with_its_one_admin_process() {
    let root = tempfile::tempdir().unwrap();
    let consoles = shards(root.path(), 9, 2, 100);
    for dir in &consoles {
        set_role(dir, "consoles", 0);
    }
    let admins = root.path().join("admins");
    runs::write(&admins, 9, (0, 1), 0);
    set_role(&admins, "admins", 3);
    let out = root.path().join("merged");
    let mut all = consoles.clone();
    all.push(admins.clone());
    merge_run_folders::<runs::TestSettings>(&all, &out, &[]).unwrap();
    let (merged, _) = read_run_folder(&out).unwrap();
    assert_eq!(merged.consoles, 100, "the admin process adds no consoles");
    let settings: runs::TestSettings = merged.config.read().unwrap();
    assert_eq!(settings.admins, 3, "the admin process's admins");
    assert_eq!(settings.role, Role::All, "the whole run");
    assert_eq!(merged.merged_from.len(), 3);

    let whole = root.path().join("whole-shard");
    runs::write(&whole, 9, (1, 2), 100);
    let second_admins = root.path().join("admins-again");
    runs::write(&second_admins, 9, (0, 1), 0);
    set_role(&second_admins, "admins", 3);
    let bad = root.path().join("bad");
    let cases: Vec<(Vec<PathBuf>, &str)> = vec![
        (
            consoles.clone(),
            "the admin process (role admins) of the split run is missing",
        ),
        (vec![admins.clone()], "only the admin process"),
        (
            vec![
                consoles[0].clone(),
                consoles[1].clone(),
                admins.clone(),
                second_admins,
            ],
            "two admin processes",
        ),
        (
            vec![consoles[0].clone(), whole, admins.clone()],
            "ran its own admins (role all)",
        ),
        (
            vec![consoles[0].clone(), admins.clone()],
            "shard 1/2 missing",
        ),
    ];
    for (i, (given, expected)) in cases.into_iter().enumerate() {
        let err = merge_run_folders::<runs::TestSettings>(&given, &bad, &[]).expect_err("refused");
        assert!(err.to_string().contains(expected), "case {i}: {err}");
        assert!(!bad.exists(), "case {i}: nothing written");
    }
}

#[cfg(unix)]
#[test]
fn merge_out_replaces_links_instead_of_writing_through_them() {
    let root = tempfile::tempdir().unwrap();
    let dirs = shards(root.path(), 4, 2, 10);
    let out = root.path().join("merged");
    merge_run_folders::<runs::TestSettings>(&dirs, &out, &[]).unwrap();
    let mut victims = Vec::new();
    for name in ["report.json", "report.html", "redeem.service.hlog"] {
        let victim = root.path().join(format!("victim-{name}"));
        std::fs::write(&victim, "not yours").unwrap();
        let link = out.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        victims.push(victim);
    }
    merge_run_folders::<runs::TestSettings>(&dirs, &out, &[]).unwrap();
    for victim in &victims {
        assert_eq!(std::fs::read_to_string(victim).unwrap(), "not yours");
    }
    assert!(
        std::fs::symlink_metadata(out.join("report.json"))
            .unwrap()
            .is_file()
    );
}

#[test]
fn counts_no_run_can_have_are_refused_not_wrapped() {
    let root = tempfile::tempdir().unwrap();
    let dirs = shards(root.path(), 5, 2, 10);
    let path = dirs[1].join("report.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    json["consoles"] = u64::MAX.into();
    std::fs::write(&path, json.to_string()).unwrap();
    let err = merge_run_folders::<runs::TestSettings>(&dirs, &root.path().join("out"), &[])
        .expect_err("a shard of 2^64 - 1 consoles")
        .to_string();
    assert!(
        err.contains("report.json")
            && err.contains("consoles")
            && err.contains("18446744073709551615"),
        "names the file, the field and the number: {err}"
    );
    assert!(!root.path().join("out").exists(), "nothing written");
}
