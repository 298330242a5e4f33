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

/// Names in backticks that are not items of ours: other crates' items, and a file.
const THEIR_ITEMS: &[&str] = &[
    "Dockerfile",
    "ArcSwap",
    "DashMap",
    "Mutex",
    "AsyncFd",
    "StorageBackend",
    "HistogramLogWriter",
];

/// The code names in backticks: a path (`App::recover`, `run/src/summary.rs::verdict`,
/// `run_fleet(config, ...)`) by its last segment, or a type-like name (`RunReport`).
fn named_items(text: &str) -> Vec<String> {
    let ident = |t: &str| {
        !t.is_empty()
            && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !t.starts_with(|c: char| c.is_ascii_digit())
    };
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|t| {
            let t = t.split('(').next().unwrap_or_default();
            let t = t.split('<').next().unwrap_or_default();
            let last = t.rsplit("::").next().unwrap_or_default();
            let camel = last.starts_with(|c: char| c.is_ascii_uppercase())
                && last.chars().any(|c| c.is_ascii_lowercase());
            (ident(last) && (t.contains("::") || camel)).then(|| last.to_owned())
        })
        .filter(|name| !THEIR_ITEMS.contains(&name.as_str()))
        .collect()
}

/// Whether `text` (Rust source) defines `name`: an item, a field or an enum variant.
fn defines(text: &str, name: &str) -> bool {
    let items = [
        "fn", "struct", "enum", "trait", "type", "const", "static", "mod",
    ];
    text.lines().any(|line| {
        let line = line.trim_start();
        let line = line.strip_prefix("pub(crate) ").unwrap_or(line);
        let line = line.strip_prefix("pub(super) ").unwrap_or(line);
        let line = line.strip_prefix("pub ").unwrap_or(line);
        let line = line.strip_prefix("async ").unwrap_or(line);
        let item = items.iter().any(|kw| {
            line.strip_prefix(kw)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|rest| rest.strip_prefix(name))
                .is_some_and(|rest| !rest.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
        });
        let member = line
            .strip_prefix(name)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', ',', ' ', '(', '{']));
        item || member
    })
}

/// A type, function, field or variant ARCHITECTURE.md names in backticks exists in the code: a
/// renamed or removed item makes the sentence that names it stale.
#[test]
fn every_item_it_names_exists() {
    let mut all = Vec::new();
    files(Path::new(ROOT), &mut all);
    let sources: String = all
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .filter_map(|p| std::fs::read_to_string(Path::new(ROOT).join(p)).ok())
        .collect::<Vec<_>>()
        .join("\n");
    let mut missing: Vec<String> = named_items(&architecture())
        .into_iter()
        .filter(|name| !defines(&sources, name))
        .collect();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names items the code does not define: {missing:?}"
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
                .filter(|(_, l)| !(p.ends_with("live/otlp.rs") && l.contains("\"/v1/metrics\"")))
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

/// The lines of a source file without its `#[cfg(test)]` items: an inline test module is left
/// out to its closing brace, a `#[cfg(test)] mod name;` declaration is one line, and the rest of
/// the file is measured.
fn production_lines(text: &str) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() != "#[cfg(test)]" {
            out.push(lines[i]);
            i += 1;
            continue;
        }
        let item = lines.get(i + 1).copied().unwrap_or_default();
        let indent = &item[..item.len() - item.trim_start().len()];
        let close = format!("{indent}}}");
        i += if item.trim_end().ends_with('{') {
            lines[i + 2..]
                .iter()
                .position(|l| *l == close)
                .map_or(lines.len(), |end| end + 3)
        } else {
            2
        };
    }
    out
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
        let lines = production_lines(&text);
        for (i, line) in lines.iter().enumerate() {
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

/// The modules of one crate's `src/` that `text` refers to (`crate::name`), but `own`.
fn referred_modules(text: &str, own: &str, modules: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in production_lines(text) {
        if line.trim_start().starts_with("//") {
            continue;
        }
        for part in line.split("crate::").skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if name != own && modules.contains(&name) && !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

/// A circle of imports among `graph`'s modules, if there is one.
fn circle(graph: &[(String, Vec<String>)]) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &[(String, Vec<String>)],
        path: &mut Vec<String>,
        done: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            return Some(path[at..].to_vec());
        }
        if done.iter().any(|n| n == node) {
            return None;
        }
        path.push(node.to_owned());
        let edges = graph
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, e)| e.clone());
        for next in edges.unwrap_or_default() {
            if let Some(found) = visit(&next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.push(node.to_owned());
        None
    }
    let mut done = Vec::new();
    graph
        .iter()
        .find_map(|(node, _)| visit(node, graph, &mut Vec::new(), &mut done))
}

/// No two modules of a crate import each other, directly or around a circle: each module's
/// imports (`crate::name`, production code, by top-level module) make a graph without cycles,
/// so every module can be read after the ones it uses.
#[test]
fn the_house_has_no_import_circle() {
    let mut all = Vec::new();
    files(Path::new(ROOT), &mut all);
    let sources: Vec<String> = all
        .iter()
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .filter(|p| p.ends_with(".rs") && (p.starts_with("src/") || p.contains("/src/")))
        .collect();
    let crates: Vec<&str> = sources
        .iter()
        .map(|p| p.split("src/").next().unwrap_or_default())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut circles = Vec::new();
    for krate in crates {
        let src = format!("{krate}src/");
        let in_crate: Vec<&String> = sources.iter().filter(|p| p.starts_with(&src)).collect();
        let top = |p: &str| -> String {
            let rest = &p[src.len()..];
            let first = rest.split('/').next().unwrap_or_default();
            first.trim_end_matches(".rs").to_owned()
        };
        let modules: Vec<String> = in_crate.iter().map(|p| top(p)).collect();
        let mut graph: Vec<(String, Vec<String>)> = Vec::new();
        for path in &in_crate {
            let own = top(path);
            let text =
                std::fs::read_to_string(Path::new(ROOT).join(path.as_str())).unwrap_or_default();
            let refs = referred_modules(&text, &own, &modules);
            match graph.iter_mut().find(|(n, _)| *n == own) {
                Some((_, edges)) => {
                    for r in refs {
                        if !edges.contains(&r) {
                            edges.push(r);
                        }
                    }
                }
                None => graph.push((own, refs)),
            }
        }
        if let Some(found) = circle(&graph) {
            circles.push(format!("{src}: {}", found.join(" -> ")));
        }
    }
    assert!(
        circles.is_empty(),
        "modules that import each other: {circles:#?}"
    );
}
