//! The README stays true: its curl tour runs as pasted, and its flag tables name only flags the
//! command has, with the defaults the command has.

use clap::CommandFactory as _;
use std::collections::BTreeMap;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md")
}

/// The first ```sh block after `heading`.
fn sh_block_after(text: &str, heading: &str) -> String {
    let from = text
        .find(heading)
        .unwrap_or_else(|| panic!("{heading:?} in README.md"));
    let rest = &text[from..];
    let start = rest.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let end = rest[start..].find("```").expect("its end");
    rest[start..start + end].to_owned()
}

#[test]
fn the_curl_tour_runs_as_pasted() {
    let tour = sh_block_after(&readme(), "### A curl tour")
        .replace("cargo build --release\n", "")
        .replace("target/release/otpfleet", env!("CARGO_BIN_EXE_otpfleet"));
    // An earlier tour's line names a port nobody listens on any more: the tour must not read
    // it (it did: the first curl failed and the orphaned server held this test's pipe open).
    std::fs::write(
        "/tmp/otpfleet-serve.out",
        "listening on http://127.0.0.1:1\n",
    )
    .expect("a stale first line");
    let out = std::process::Command::new("timeout")
        .args(["90", "bash", "-e", "-c", &tour])
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for text in [
        "\"status\":\"awaiting_approval\"",
        "credentials_already_issued",
        "\"provisioning\":\"signed_in\"",
        "otpfleet_accounts",
    ] {
        assert!(stdout.contains(text), "{text}: {stdout}\n{stderr}");
    }
}

/// `--flag` names in the first column of the tables under `### \`otpfleet <sub>\``, with the
/// default column's text.
fn readme_flags(text: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut sub = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("### `otpfleet ") {
            sub = rest.split(['`', ' ']).next().map(str::to_owned);
            continue;
        }
        if line.starts_with("## ") || line.starts_with("### ") {
            sub = None;
            continue;
        }
        let (Some(sub), Some(row)) = (&sub, line.strip_prefix("| `--")) else {
            continue;
        };
        let row = format!("`--{row}");
        let mut cells = row.split(" | ");
        let (flags, default) = (cells.next().unwrap_or(""), cells.next().unwrap_or(""));
        let names: Vec<String> = flags
            .split('`')
            .filter(|f| f.starts_with("--"))
            .map(|f| f.split_whitespace().next().unwrap_or(f).to_owned())
            .collect();
        let defaults: Vec<&str> = default.split(" / ").collect();
        for (i, name) in names.iter().enumerate() {
            let d = if defaults.len() == names.len() {
                defaults[i]
            } else {
                ""
            };
            out.entry(sub.clone())
                .or_default()
                .push((name.clone(), d.trim().trim_matches('`').to_owned()));
        }
    }
    out
}

#[test]
fn the_flag_tables_are_the_commands_flags() {
    let tables = readme_flags(&readme());
    assert!(
        tables.contains_key("fleet") && tables.contains_key("serve"),
        "{tables:?}"
    );
    let cli = otpfleet::Opts::command();
    for (sub, rows) in &tables {
        let command = cli
            .find_subcommand(sub)
            .unwrap_or_else(|| panic!("README documents `otpfleet {sub}`, which does not exist"));
        let flags: BTreeMap<String, Vec<String>> = command
            .get_arguments()
            .filter_map(|a| {
                let defaults = a
                    .get_default_values()
                    .iter()
                    .map(|v| v.to_string_lossy().into_owned())
                    .collect();
                Some((format!("--{}", a.get_long()?), defaults))
            })
            .collect();
        for (name, default) in rows {
            let Some(clap_default) = flags.get(name) else {
                panic!(
                    "README's `otpfleet {sub}` table names {name}, which the command does not have"
                );
            };
            // A plain number in the default column is the command's default.
            if !default.is_empty() && default.chars().all(|c| c.is_ascii_digit()) {
                assert_eq!(
                    clap_default.first(),
                    Some(default),
                    "otpfleet {sub} {name}: README says {default}"
                );
            }
        }
    }
}

/// Where the README and the help say the same thing, they agree: the subcommands the README
/// lists for `otpfleet report` are the command's, and the one-line help of `report` names each;
/// the timer `--coarse-timers` turns off is the one the README describes.
#[test]
fn the_help_says_what_the_readme_says() {
    let text = readme();
    let listed = text
        .split("`otpfleet report ")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .expect("the README lists report's subcommands");
    let listed: std::collections::BTreeSet<&str> = listed.split('|').collect();
    let cli = otpfleet::Opts::command();
    let report = cli.find_subcommand("report").expect("report");
    let names: std::collections::BTreeSet<&str> = report
        .get_subcommands()
        .map(|c| c.get_name())
        .filter(|n| *n != "help")
        .collect();
    assert_eq!(listed, names, "README vs `otpfleet report --help`");
    let about = report
        .get_about()
        .map(ToString::to_string)
        .unwrap_or_default();
    for name in &names {
        assert!(
            about.contains(name),
            "`otpfleet --help` on report: {about:?} omits {name}"
        );
    }
    let fleet = cli.find_subcommand("fleet").expect("fleet");
    let coarse = fleet
        .get_arguments()
        .find(|a| a.get_long() == Some("coarse-timers"))
        .and_then(|a| a.get_help().map(ToString::to_string))
        .expect("--coarse-timers has help");
    assert!(text.contains("Linux `timerfd`"), "the README's timer");
    assert!(
        coarse.contains("timerfd") && !coarse.contains("yield"),
        "{coarse}"
    );
}
