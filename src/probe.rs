//! `otpfleet probe`: how many requests per second the emulator's own request path drives on
//! one stateless route, and at what CPU cost: the generator-efficiency measurement.

use anyhow::{Context as _, bail};
use clap::Args;
use otpfleet_emulator::probe::{Pace, ProbeResult, probe};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct ProbeOpts {
    /// Server URL: http:// or https:// (e.g. http://127.0.0.1:8080).
    #[arg(long, value_name = "URL")]
    pub target: String,
    /// PEM file of the CA certificate(s) to trust for an https:// target, instead of the
    /// platform's trusted roots.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Route to request with GET; a stateless one (`/healthz`) measures the generator.
    #[arg(long, default_value = "/healthz")]
    pub path: String,
    /// Concurrent workers, each with requests in flight one at a time (and connections).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub connections: u64,
    /// How long to run, seconds (1 to 600).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub duration_s: u64,
    /// Worker threads of the generator (the CPU cores it may use).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub threads: u64,
    /// Send at this fixed rate, requests per second (open loop, as oha -q RATE
    /// --latency-correction), instead of as fast as the connections allow.
    #[arg(long, value_name = "PER_S")]
    pub rate: Option<f64>,
    /// With --rate: send on tokio's timer alone (up to ~2 ms late, shown as lateness) instead of
    /// yielding through the last millisecond to send when due (which costs CPU).
    #[arg(long)]
    pub coarse_timers: bool,
    /// Print the result as one JSON object (for scripts).
    #[arg(long)]
    pub json: bool,
}

pub fn run(opts: ProbeOpts) -> anyhow::Result<()> {
    otpfleet_run::target::check_target(Some(&opts.target), None, opts.ca_cert.as_deref())?;
    if !opts.path.starts_with('/') {
        let why = format!("--path {:?} must start with /", opts.path);
        return Err(otpfleet_run::BadInput(why).into());
    }
    if let Some(rate) = opts.rate {
        if !(rate.is_finite() && (0.1..=1_000_000.0).contains(&rate)) {
            let why = format!("--rate {rate} must be from 0.1 to 1000000 requests per second");
            return Err(otpfleet_run::BadInput(why).into());
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.threads as usize)
        .enable_all()
        .build()
        .context("while starting the async runtime")?;
    let connections = opts.connections as usize;
    let cpu_before = cpu_seconds();
    let timeout = Duration::from_secs(10);
    let ca_cert = opts.ca_cert.as_deref();
    let transport = otpfleet_run::target::transport(&opts.target, ca_cert, connections, timeout)?;
    let result = runtime.block_on(async {
        let pace = match opts.rate {
            Some(per_s) => Pace::Rate {
                per_s,
                precise: !opts.coarse_timers,
            },
            None => Pace::Closed {
                workers: connections,
            },
        };
        probe(
            transport,
            &opts.path,
            pace,
            Duration::from_secs(opts.duration_s),
        )
        .await
    });
    let cpu = cpu_seconds() - cpu_before;
    print_result(&result, cpu, opts.json);
    if result.requests == 0 {
        bail!("no request succeeded: is the server at {} up?", opts.target);
    }
    Ok(())
}

/// Prints a probe's result: one JSON object with `json`, else a few lines for people.
fn print_result(result: &ProbeResult, cpu: f64, json: bool) {
    let secs = result.elapsed.as_secs_f64();
    let rps = result.requests as f64 / secs;
    let l = &result.latency;
    if json {
        let json = serde_json::json!({
            "requests": result.requests,
            "errors": result.errors,
            "dropped": result.dropped,
            "elapsed_s": secs,
            "rps": rps,
            "cpu_s": cpu,
            "latency_us": l,
        });
        println!("{json}");
    } else {
        println!(
            "requests {} errors {} dropped {} in {secs:.2} s: {rps:.0} req/s",
            result.requests, result.errors, result.dropped
        );
        println!(
            "generator CPU {cpu:.2} s: {:.0} req/s per CPU core",
            result.requests as f64 / cpu.max(1e-9)
        );
        println!("µs           p50      p90      p99    p99.9      max");
        for (name, s) in [
            ("response", &l.response),
            ("service", &l.service),
            ("lateness", &l.lateness),
        ] {
            println!(
                "{name:<9} {:>7}  {:>7}  {:>7}  {:>7}  {:>7}",
                s.p50, s.p90, s.p99, s.p999, s.max
            );
        }
    }
}

/// User plus system CPU time of this process, in seconds (from /proc; 0 where unavailable).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}
