//! A fleet run: seed the server, start the admins, let every console arrive and walk its first
//! boot, collect the outcomes (with a progress bar), and build the report.

use crate::admin::{Admin, Desk, run_admin};
use crate::api::Ctx;
use crate::config::FleetConfig;
use crate::console::{ConsoleRecord, run_console};
use crate::profile::ConsoleProfile;
use crate::seed::seed_server;
use crate::tally::Tally;
use crate::transport::Transport;
use indicatif::{ProgressBar, ProgressStyle};
use otpfleet_reports::{
    Flow, Outcomes, Recorder, RunKind, RunReport, SCHEMA_VERSION, ShardInfo, Step, Throughput,
    TimeToSignedIn, interval_length, latency_of, summarize,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How a run shows itself while it goes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Draw a progress bar on stderr (hidden anyway when stderr is not a terminal).
    pub progress: bool,
}

/// What a run produced.
#[derive(Debug)]
pub struct FleetRun {
    pub report: RunReport,
    pub recorder: Arc<Recorder>,
    /// One record per console, in index order.
    pub consoles: Vec<ConsoleRecord>,
}

/// The consoles of this run's shard, drawn from the seed.
pub fn profiles(cfg: &FleetConfig) -> Vec<ConsoleProfile> {
    (0..cfg.consoles)
        .filter(|i| cfg.shard.owns(*i))
        .map(|i| ConsoleProfile::draw(cfg, i))
        .collect()
}

/// Runs a fleet against the server behind `transport`, administered with `admin_token`.
/// A setup failure (the server refuses to be seeded) is an error; a server that dies mid-run
/// ends the run early with a report of what was measured (`complete: false`).
pub async fn run_fleet<T: Transport>(
    cfg: FleetConfig,
    transport: T,
    admin_token: &str,
    opts: RunOptions,
) -> Result<FleetRun, String> {
    cfg.validate()?;
    let ctx = Arc::new(Ctx {
        cfg: cfg.clone(),
        recorder: Arc::new(Recorder::default()),
        tally: Arc::new(Tally::default()),
    });
    let profiles = profiles(&cfg);
    let tickets = seed_server(&ctx, &transport, admin_token, &profiles).await?;
    let started = Instant::now();
    let done = CancellationToken::new();
    let admins = if cfg.auto_approve { 0 } else { cfg.admins };
    let desk = Arc::new(Desk::default());
    let admin_tasks: Vec<_> = (0..admins)
        .map(|number| {
            let admin = Admin {
                number,
                token: admin_token.to_owned(),
                schedule: None,
                decision: cfg.timing.decision,
                reject: cfg.rates.reject,
            };
            let (ctx, transport, desk, done) = (
                Arc::clone(&ctx),
                transport.clone(),
                Arc::clone(&desk),
                done.clone(),
            );
            tokio::spawn(async move { run_admin(&ctx, transport, admin, &desk, done).await })
        })
        .collect();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let total = profiles.len();
    let launcher = {
        let (ctx, transport) = (Arc::clone(&ctx), transport.clone());
        tokio::spawn(async move {
            for (p, ticket) in profiles.into_iter().zip(tickets) {
                // Spawn each console when it arrives, so only arrived consoles hold memory.
                let arrival = started + Duration::from_millis(p.arrival_ms);
                tokio::select! {
                    () = tokio::time::sleep_until(arrival) => {}
                    () = ctx.tally.cancel_token().cancelled() => {}
                }
                let (ctx, transport, tx) = (Arc::clone(&ctx), transport.dedicated(), tx.clone());
                tokio::spawn(async move {
                    let record = run_console(&ctx, transport, &p, &ticket, started).await;
                    let _ = tx.send(record);
                });
            }
        })
    };
    let recorder = Arc::clone(&ctx.recorder);
    let ticker = tick_intervals(
        move |end| recorder.close_interval(end),
        started,
        interval_length(Duration::from_millis(cfg.max_duration_ms)),
    );
    let progress = progress_bar(total as u64, opts.progress);
    let deadline = started + Duration::from_millis(cfg.max_duration_ms);
    let mut records = Vec::with_capacity(total);
    let mut outcomes = Outcomes::default();
    while records.len() < total {
        tokio::select! {
            got = rx.recv() => {
                let Some(record) = got else { break };
                outcomes.add(record.outcome);
                progress.inc(1);
                progress.set_message(outcome_line(&outcomes));
                records.push(record);
            }
            () = tokio::time::sleep_until(deadline), if !ctx.tally.cancel_token().is_cancelled() => {
                ctx.tally.stop(format!("the run reached its time limit ({} s)", cfg.max_duration_ms / 1000));
            }
        }
    }
    progress.finish_and_clear();
    done.cancel();
    let _ = launcher.await;
    for task in admin_tasks {
        let _ = task.await;
    }
    records.sort_by_key(|r| r.index);
    ticker.abort();
    ctx.recorder.close_interval(started.elapsed());
    let report = build_report(
        RunKind::Fleet,
        &ctx,
        &transport.describe(),
        &records,
        started.elapsed(),
    );
    Ok(FleetRun {
        report,
        recorder: Arc::clone(&ctx.recorder),
        consoles: records,
    })
}

/// Closes a recorder's interval (`close`) every `length` from `started`, at the nominal moment
/// (so intervals are whole multiples of `length`), until aborted. The run closes the last, partial
/// interval itself when it ends.
pub fn tick_intervals(
    close: impl Fn(Duration) + Send + 'static,
    started: Instant,
    length: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut end = length;
        loop {
            tokio::time::sleep_until(started + end).await;
            close(end);
            end += length;
        }
    })
}

fn progress_bar(total: u64, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} consoles  {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn outcome_line(o: &Outcomes) -> String {
    format!(
        "otp {} | manual {} | rejected {} | expired {} | verification failed {} | abandoned {}",
        o.signed_in_otp,
        o.signed_in_manual,
        o.rejected,
        o.expired,
        o.verification_failed,
        o.abandoned
    )
}

/// The report of a run from its counters and records.
pub fn build_report(
    kind: RunKind,
    ctx: &Ctx,
    target: &str,
    records: &[ConsoleRecord],
    elapsed: Duration,
) -> RunReport {
    let mut outcomes = Outcomes::default();
    for r in records {
        outcomes.add(r.outcome);
    }
    // A rehearsal's requests take no time (the in-process server in simulated time): it
    // reports no latency and no rates, only what the rollout came to.
    let measured = kind != RunKind::Rehearsal;
    let histograms = ctx.recorder.histograms();
    // The steps of DESIGN.md section 5 always appear; others when something was measured.
    const ALWAYS: [&str; 6] = ["verify", "redeem", "poll", "approve", "sign_in", "issue"];
    let (latency_us, throughput, over_time) = if measured {
        let counts = Step::ALL
            .into_iter()
            .map(|s| (s.as_str().to_owned(), ctx.recorder.counts(s)))
            .collect();
        (
            latency_of(&histograms, &ALWAYS),
            Throughput::of(counts, round_ms(elapsed)),
            ctx.recorder.points(),
        )
    } else {
        Default::default()
    };
    let cfg = &ctx.cfg;
    let stopped_because = ctx.tally.stopped_because();
    RunReport {
        schema_version: SCHEMA_VERSION,
        kind,
        otpfleet_version: env!("CARGO_PKG_VERSION").to_owned(),
        seed: cfg.seed,
        consoles: records.len() as u64,
        shard: ShardInfo {
            index: cfg.shard.index,
            count: cfg.shard.count,
        },
        target: target.to_owned(),
        complete: stopped_because.is_none(),
        stopped_because,
        outcomes,
        faults: ctx.tally.faults(),
        errors: ctx.tally.errors(),
        latency_us,
        throughput,
        over_time,
        time_to_signed_in_s: TimeToSignedIn {
            over_range: ctx.recorder.flows_over_range(),
            ..TimeToSignedIn::from_us(&summarize(
                &ctx.recorder.flow_histogram(Flow::TimeToSignedIn),
            ))
        },
        duration_s: round_ms(elapsed),
        config: serde_json::to_value(cfg).unwrap_or_default(),
        timeline: Vec::new(),
        rehearsal: None,
        merged_from: Vec::new(),
    }
}

/// Seconds, rounded to the millisecond.
fn round_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// Writes one line per console: index, make, model, serial, faults, outcome.
pub fn write_consoles_csv(
    records: &[ConsoleRecord],
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    writeln!(
        out,
        "index,make,model,serial,hdmi_missing,typos,manual,late,outcome,time_to_signed_in_ms"
    )?;
    for r in records {
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{}",
            r.index,
            r.make,
            r.model,
            r.serial,
            r.hdmi_missing,
            r.typos,
            r.manual,
            r.late,
            r.outcome.as_str(),
            r.time_to_signed_in_ms
                .map_or(String::new(), |t| t.to_string())
        )?;
    }
    Ok(())
}
