//! A run folder holds the three views of every step as HdrHistogram logs, and its pages can be
//! rebuilt from report.json and those logs, byte for byte.

use crate::runs;
use otpfleet_reports::{View, read_run_folder, render_run_folder, write_html, write_run_folder};

#[test]
fn render_rebuilds_the_same_pages_from_report_json_and_the_histogram_logs() {
    let dir = tempfile::tempdir().unwrap();
    let report = runs::write(dir.path(), 11, (0, 1), 300);
    for name in [
        "verify.response.hlog",
        "verify.service.hlog",
        "verify.lateness.hlog",
        "time_to_signed_in.hlog",
    ] {
        assert!(dir.path().join(name).exists(), "{name} is written");
    }
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    let (md, html) = (read("report.md"), read("report.html"));
    std::fs::remove_file(dir.path().join("report.md")).unwrap();
    std::fs::write(dir.path().join("report.html"), "stale").unwrap();

    let files = render_run_folder(dir.path()).unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(read("report.md"), md, "report.md is rebuilt identically");
    assert_eq!(
        read("report.html"),
        html,
        "report.html is rebuilt identically"
    );

    let (back, histograms) = read_run_folder(dir.path()).unwrap();
    assert_eq!(back, report);
    for view in [View::Response, View::Service, View::Lateness] {
        assert_eq!(histograms.view("redeem", view).unwrap().len(), 300);
    }
    assert_eq!(
        histograms.lines[&("redeem".to_owned(), View::Service)].len(),
        2
    );
}

#[test]
fn the_page_is_self_contained_and_draws_every_chart() {
    let (report, recorder) = runs::run(3, (0, 1), 200);
    let histograms = recorder.histograms();
    let mut page = Vec::new();
    write_html(&report, &histograms, &mut page).unwrap();
    let page = String::from_utf8(page).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    for outside in [
        "<script", "<link", "src=", "href=", "@import", "url(", "https:",
    ] {
        assert!(!page.contains(outside), "the page loads nothing: {outside}");
    }
    // Percentile overview, per step, rates and p99 over time, time to signed in, outcomes,
    // faults.
    assert_eq!(page.matches("<svg").count(), 7, "seven charts");
    for text in [
        "99.9%",
        "verify",
        "signed_in_otp",
        "otp_typos",
        "has no timeline",
        "requests per second",
        "service time",
        "lateness",
    ] {
        assert!(page.contains(text), "{text}");
    }

    let full = runs::full_report();
    let mut page = Vec::new();
    write_html(&full, &histograms, &mut page).unwrap();
    let page = String::from_utf8(page).unwrap();
    // A rehearsal's latencies are simulated (not charted nor tabled); its timeline is drawn.
    assert_eq!(page.matches("<svg").count(), 4, "{page}");
    assert!(
        !page.contains("Latency by percentile") && !page.contains("No request latencies"),
        "no empty latency panel for simulated time"
    );
    assert!(
        !page.contains("Latency per step"),
        "no latency table for simulated time"
    );
    assert!(page.contains("awaiting approval") && page.contains("Incomplete run"));
    assert!(page.contains("wave 1 &lt;east&gt;"), "text is escaped");
    assert!(page.contains("Merged from <code>runs/a</code>"));
}

/// A fleet's page draws its arrivals, the schedule against the launcher, and says the totals;
/// a run without arrivals (load, rehearsal, older reports) has no such section.
#[test]
fn a_fleets_page_draws_its_arrivals_against_the_schedule() {
    let (mut report, recorder) = runs::run(3, (0, 1), 200);
    let histograms = recorder.histograms();
    let point =
        |start_s: f64, intended, started, dropped, late_ms_max| otpfleet_reports::ArrivalPoint {
            start_s,
            length_s: 1.0,
            intended,
            started,
            dropped,
            late_ms_max,
        };
    report.arrivals = vec![
        point(0.0, 100, 100, 0, 3),
        point(1.0, 100, 60, 0, 420),
        point(2.0, 100, 110, 30, 1_250),
    ];
    let page = |report: &otpfleet_reports::RunReport| {
        let mut page = Vec::new();
        write_html(report, &histograms, &mut page).unwrap();
        String::from_utf8(page).unwrap()
    };
    let section = |page: &str| {
        let from = page.find("<h2>Arrivals</h2>")?;
        let section = &page[from..];
        Some(section[..section.find("</section>").unwrap()].to_owned())
    };
    let full = page(&report);
    assert_eq!(
        full.matches("<svg").count(),
        8,
        "the seven charts and the arrivals"
    );
    let arrivals = section(&full).expect("an arrivals section");
    for text in [
        "300 intended, 270 started, 30 dropped",
        "at most 1.25 s after its",
        // The legend's entries (plotters writes a text's content on a line of its own).
        ">\nintended\n<",
        ">\nstarted\n<",
        ">\ndropped\n<",
        "consoles per second",
    ] {
        assert!(arrivals.contains(text), "{text}: {arrivals}");
    }
    report.arrivals[2].dropped = 0;
    let arrivals = section(&page(&report)).expect("an arrivals section");
    assert!(
        !arrivals.contains(">\ndropped\n<"),
        "no dropped line when none were"
    );
    report.arrivals.clear();
    assert_eq!(section(&page(&report)), None);
}

#[test]
fn a_folder_written_from_histograms_reads_back_the_same_histograms() {
    let dir = tempfile::tempdir().unwrap();
    let (report, recorder) = runs::run(4, (0, 1), 120);
    let histograms = recorder.histograms();
    write_run_folder(dir.path(), &report, &histograms, None).unwrap();
    let (_, back) = read_run_folder(dir.path()).unwrap();
    assert_eq!(back, histograms);
}

#[test]
fn a_folder_of_another_schema_version_is_refused_naming_its_writer() {
    let dir = tempfile::tempdir().unwrap();
    runs::write(dir.path(), 2, (0, 1), 20);
    let path = dir.path().join("report.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    json["schema_version"] = 1.into();
    json["otpfleet_version"] = "0.0.9".into();
    std::fs::write(&path, json.to_string()).unwrap();
    let err = render_run_folder(dir.path())
        .expect_err("an old folder")
        .to_string();
    assert!(
        err.contains("schema version 1") && err.contains("otpfleet 0.0.9"),
        "{err}"
    );
}

/// Links planted in a run folder, each pointing at a file outside it.
#[cfg(unix)]
fn plant_links(dir: &std::path::Path, names: &[&str]) -> Vec<std::path::PathBuf> {
    names
        .iter()
        .map(|name| {
            let victim = dir.with_file_name(format!("victim-{name}"));
            std::fs::write(&victim, "not yours").unwrap();
            let link = dir.join(name);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&victim, &link).unwrap();
            victim
        })
        .collect()
}

#[cfg(unix)]
#[test]
fn render_replaces_a_link_in_the_folder_instead_of_writing_through_it() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    runs::write(&dir, 3, (0, 1), 20);
    let victims = plant_links(&dir, &["report.html", "report.md"]);
    render_run_folder(&dir).unwrap();
    for victim in &victims {
        assert_eq!(std::fs::read_to_string(victim).unwrap(), "not yours");
    }
    for name in ["report.html", "report.md"] {
        let meta = std::fs::symlink_metadata(dir.join(name)).unwrap();
        assert!(meta.is_file(), "{name} is a file of the run again");
    }
    assert!(
        std::fs::read_to_string(dir.join("report.md"))
            .unwrap()
            .contains("seed"),
        "and it is the report"
    );
}
