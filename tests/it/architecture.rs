//! ARCHITECTURE.md stays true: every file it names exists, every crate of the workspace has its
//! section, and every subcommand is named (as rust-analyzer's own documentation test does).

use clap::CommandFactory as _;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// Files of a run folder, named in ARCHITECTURE.md as what runs write.
const RUN_FILES: &[&str] = &["report.json", "report.md", "report.html", "consoles.csv"];

fn architecture() -> String {
    std::fs::read_to_string(Path::new(ROOT).join("ARCHITECTURE.md")).expect("ARCHITECTURE.md")
}

/// Every file of the repository (target, .git and run folders left out), relative to the root.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if matches!(
            name.to_str(),
            Some("target" | ".git" | "runs" | "node_modules")
        ) {
            continue;
        }
        if path.is_dir() {
            files(&path, out);
        } else if let Ok(relative) = path.strip_prefix(ROOT) {
            out.push(relative.to_path_buf());
        }
    }
}

/// The names in backticks that look like a file or folder of ours: `server/src/journal.rs`,
/// `journal.rs`, `scripts/perf-gate`, `benches/`.
fn named_paths(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|t| !t.contains(' ') && !t.contains("::") && !t.contains('<') && !t.contains('*'))
        // What a run writes into its folder is not a file of the repository.
        .filter(|t| !RUN_FILES.contains(t))
        .filter(|t| {
            let file = [".rs", ".toml", ".json", ".md"]
                .iter()
                .any(|ext| t.ends_with(ext));
            file || t.starts_with("scripts/") || (t.ends_with('/') && t.len() > 1)
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_file_it_names_exists() {
    let mut all = Vec::new();
    files(Path::new(ROOT), &mut all);
    let all: Vec<String> = all
        .iter()
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .collect();
    let missing: Vec<String> = named_paths(&architecture())
        .into_iter()
        .filter(|name| {
            let name = name.trim_start_matches("./");
            !all.iter().any(|f| {
                f == name
                    || f.ends_with(&format!("/{name}"))
                    || (name.ends_with('/')
                        && (f.starts_with(name) || f.contains(&format!("/{name}"))))
            })
        })
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names files that do not exist: {missing:?}"
    );
}

#[test]
fn every_crate_and_subcommand_is_in_it() {
    let text = architecture();
    let manifest = std::fs::read_to_string(Path::new(ROOT).join("Cargo.toml")).expect("Cargo.toml");
    let members: Vec<&str> = manifest
        .split("members = [")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .expect("workspace members")
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|m| *m != ".")
        .collect();
    assert!(members.len() >= 5, "{members:?}");
    for member in members {
        assert!(
            text.contains(&format!("### `{member}/`")),
            "ARCHITECTURE.md has no section for the crate {member}/"
        );
    }
    for sub in otpfleet::Opts::command().get_subcommands() {
        let name = sub.get_name();
        let file = name.replace('-', "_");
        assert!(
            text.contains(&format!("otpfleet {name}")) || text.contains(&format!("{file}.rs")),
            "ARCHITECTURE.md does not name the subcommand `otpfleet {name}`"
        );
    }
}

/// Every client path comes from `protocol`'s route table: no `"/v1/...` literal in the
/// production code of any crate but `protocol` (comments aside).
#[test]
fn route_paths_are_written_only_in_protocol() {
    let mut all = Vec::new();
    files(Path::new(ROOT), &mut all);
    let offenders: Vec<String> = all
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .filter(|p| {
            let s = p.to_string_lossy();
            (s.starts_with("src/") || s.contains("/src/")) && !s.starts_with("protocol/")
        })
        .flat_map(|p| {
            let text = std::fs::read_to_string(Path::new(ROOT).join(p)).unwrap_or_default();
            text.lines()
                .enumerate()
                .filter(|(_, l)| !l.trim_start().starts_with("//") && l.contains("/v1/"))
                // OTLP's path, where a collector takes metrics: the collector's contract, not ours.
                .filter(|(_, l)| !(p.ends_with("src/otlp.rs") && l.contains("\"/v1/metrics\"")))
                .map(|(i, l)| format!("{}:{}: {}", p.display(), i + 1, l.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "paths written outside protocol's route table (use RouteId::path/path_for): {offenders:#?}"
    );
}

/// The workspace crates `member`'s `[dependencies]` name (not its dev-dependencies).
fn workspace_dependencies(member: &str) -> Vec<String> {
    let manifest = Path::new(ROOT).join(member).join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).expect("a member's Cargo.toml");
    let mut section = "";
    let mut deps = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if section == "[dependencies]" && line.starts_with("otpfleet-") {
            let name = line.split(['.', ' ', '=']).next().unwrap_or_default();
            deps.push(name.trim_start_matches("otpfleet-").to_owned());
        }
    }
    deps
}

/// The client crate and the load scenarios never build the server: they load any server
/// implementing the contract (`cargo tree -p otpfleet-scenarios` has no `otpfleet-server`).
#[test]
fn the_clients_of_the_contract_do_not_build_the_server() {
    for start in ["client", "scenarios"] {
        let mut seen = vec![start.to_owned()];
        let mut next = vec![start.to_owned()];
        while let Some(member) = next.pop() {
            for dep in workspace_dependencies(&member) {
                if !seen.contains(&dep) {
                    seen.push(dep.clone());
                    next.push(dep);
                }
            }
        }
        assert!(
            !seen.iter().any(|c| c == "server" || c == "emulator"),
            "{start} depends on {seen:?}: the server is built into it"
        );
    }
    assert_eq!(workspace_dependencies("client"), ["protocol"]);
}

/// Flat tables, longer than a function should be because they list one line per case: the
/// route table's dispatch, the audit log's entry per event, the metrics writer, and replay's
/// match over events.
const FLAT_TABLES: &[&str] = &[
    "server/src/http/router.rs:dispatch",
    "server/src/audit.rs:entry",
    "server/src/http/metrics.rs:render",
    "server/src/domain/replay.rs:apply",
];

/// Most lines of a production function (from `fn` to its closing brace).
const MAX_FUNCTION_LINES: usize = 70;

/// No production function is longer than `MAX_FUNCTION_LINES` but the flat tables (tests and
/// `#[cfg(test)]` modules aside): rustfmt's layout, so the count is the code's shape.
#[test]
fn production_functions_are_short() {
    let mut all = Vec::new();
    files(Path::new(ROOT), &mut all);
    let mut long = Vec::new();
    for path in all.iter().filter(|p| {
        let s = p.to_string_lossy();
        p.extension().is_some_and(|e| e == "rs") && (s.starts_with("src/") || s.contains("/src/"))
    }) {
        let text = std::fs::read_to_string(Path::new(ROOT).join(path)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let production = lines
            .iter()
            .position(|l| l.trim() == "#[cfg(test)]")
            .unwrap_or(lines.len());
        for (i, line) in lines[..production].iter().enumerate() {
            let body = line.trim_start();
            let indent = &line[..line.len() - body.len()];
            let body = body.strip_prefix("pub(crate) ").unwrap_or(body);
            let body = body.strip_prefix("pub ").unwrap_or(body);
            let body = body.strip_prefix("async ").unwrap_or(body);
            let Some(name) = body.strip_prefix("fn ") else {
                continue;
            };
            let name: String = name
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let close = format!("{indent}}}");
            let Some(end) = lines[i + 1..].iter().position(|l| *l == close) else {
                continue;
            };
            let length = end + 2;
            let key = format!("{}:{name}", path.display());
            if length > MAX_FUNCTION_LINES && !FLAT_TABLES.contains(&key.as_str()) {
                long.push(format!("{key} ({length} lines)"));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines (split them, or name a flat table): {long:#?}"
    );
}
