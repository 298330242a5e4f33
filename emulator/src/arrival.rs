//! When consoles arrive: the open-model schedules of k6 and Gatling. Even spread over a window
//! (today's default), a constant rate, a linear ramp, steps, a Poisson process, or the arrival
//! offsets of a real rollout replayed from a file.
//!
//! **Invariant:** console `i`'s arrival is a function of (schedule, console count, seed, `i`)
//! alone, so a shard computes its own consoles' arrivals with no coordination and the shards of a
//! run together arrive exactly as the unsharded run does.

use crate::streams::{Stream, stream_rng};
use rand::Rng as _;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

/// How consoles arrive (`--arrival`).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Arrival {
    /// Evenly spread over the arrival window.
    #[default]
    Even,
    /// A constant rate, consoles per second.
    Rate(f64),
    /// From one rate to another (consoles per second), linearly over `over_ms`. As in k6 and
    /// Gatling the stage fixes the shape and the duration, so the run's count is the ramp's area
    /// (`fixed_count`).
    Ramp { from: f64, to: f64, over_ms: u64 },
    /// Rates (consoles per second) held for durations, one after another; the run's count is
    /// what the steps bring together (`fixed_count`).
    Steps(Vec<(f64, u64)>),
    /// A Poisson process of this mean rate: exponential gaps from the seed's arrival stream.
    Poisson(f64),
    /// Arrival offsets from a file, milliseconds from the first, sorted.
    Replay {
        path: String,
        offsets_ms: Arc<[u64]>,
    },
}

/// The forms `--arrival` accepts, for error messages.
pub const FORMS: &str = "even, rate:50/s, ramp:0/s..200/s@10m, steps:10/s@1m,50/s@5m, \
                         poisson:50/s, replay:FILE (rates per s, m or h; durations in ms, s, m or h)";

/// The highest rate a schedule takes, consoles per second.
const MAX_RATE: f64 = 1_000_000.0;

impl FromStr for Arrival {
    type Err = String;

    fn from_str(spec: &str) -> Result<Arrival, String> {
        let spec = spec.trim();
        let bad = |part: &str, why: &str| format!("{spec:?}: {part:?} {why}; give one of {FORMS}");
        let (kind, rest) = spec.split_once(':').unwrap_or((spec, ""));
        match kind {
            "even" if rest.is_empty() => Ok(Arrival::Even),
            "rate" => rate(rest).map(Arrival::Rate).map_err(|why| bad(rest, &why)),
            "poisson" => rate(rest)
                .map(Arrival::Poisson)
                .map_err(|why| bad(rest, &why)),
            "ramp" => {
                let Some((rates, over)) = rest.split_once('@') else {
                    return Err(bad(rest, "is not FROM/s..TO/s@DURATION"));
                };
                let Some((from, to)) = rates.split_once("..") else {
                    return Err(bad(rates, "is not FROM/s..TO/s"));
                };
                let from = rate_or_zero(from).map_err(|why| bad(from, &why))?;
                let to = rate_or_zero(to).map_err(|why| bad(to, &why))?;
                let over_ms = duration_ms(over).map_err(|why| bad(over, &why))?;
                let ramp = Arrival::Ramp { from, to, over_ms };
                match ramp.fixed_count() {
                    Some(0) => Err(bad(rest, "brings no console")),
                    _ => Ok(ramp),
                }
            }
            "steps" => {
                let mut steps = Vec::new();
                for step in rest.split(',') {
                    let Some((r, d)) = step.split_once('@') else {
                        return Err(bad(step, "is not RATE/s@DURATION"));
                    };
                    let r = rate_or_zero(r).map_err(|why| bad(r, &why))?;
                    let d = duration_ms(d).map_err(|why| bad(d, &why))?;
                    steps.push((r, d));
                }
                if steps.last().is_some_and(|(r, _)| *r == 0.0) {
                    return Err(bad(rest, "ends at 0/s, a pause no console arrives after"));
                }
                let steps = Arrival::Steps(steps);
                match steps.fixed_count() {
                    Some(0) => Err(bad(rest, "brings no console")),
                    _ => Ok(steps),
                }
            }
            "replay" if !rest.is_empty() => replay(rest),
            _ => Err(bad(kind, "is not a schedule")),
        }
    }
}

/// `50/s`, `3000/m`, `100/h`: consoles per second, above zero.
fn rate(text: &str) -> Result<f64, String> {
    let r = rate_or_zero(text)?;
    if r == 0.0 {
        return Err("is zero: no console would arrive".into());
    }
    Ok(r)
}

fn rate_or_zero(text: &str) -> Result<f64, String> {
    let (n, unit) = text
        .trim()
        .split_once('/')
        .ok_or("is not a rate such as 50/s")?;
    let per = match unit {
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err("has no unit /s, /m or /h".into()),
    };
    let n: f64 = n.parse().map_err(|_| "is not a number of consoles")?;
    let r = n / per;
    if !(r.is_finite() && (0.0..=MAX_RATE).contains(&r)) {
        return Err(format!("is outside 0 to {MAX_RATE} consoles per second"));
    }
    Ok(r)
}

/// `500ms`, `30s`, `10m`, `2h`: milliseconds, above zero.
fn duration_ms(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let per_ms: u64 = match &text[digits.len()..] {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        _ => return Err("has no unit ms, s, m or h".into()),
    };
    let n: u64 = digits.parse().map_err(|_| "is not a whole number")?;
    match n.checked_mul(per_ms) {
        Some(ms) if ms > 0 && ms <= 366 * 86_400_000 => Ok(ms),
        _ => Err("is outside 1 ms to 366 days".into()),
    }
}

/// Reads a replay file: one arrival per line, its first comma-separated field the time in
/// seconds (a number; offsets from the first arrival are taken); an optional header line,
/// blank lines and `#` comments skipped.
fn replay(path: &str) -> Result<Arrival, String> {
    let text = otpfleet_reports::read_text(Path::new(path), MAX_REPLAY_BYTES)
        .map_err(|e| format!("the replay file {path}: {e}"))?;
    replay_text(path, &text)
}

/// The most a replay file may hold: far above a million consoles' arrivals (about 10 MB).
const MAX_REPLAY_BYTES: u64 = 256 * 1024 * 1024;
/// The most arrivals a replay file may hold: as many consoles as a fleet runs
/// (`config::MAX_CONSOLES`, which this module does not import).
pub const MAX_REPLAY_ROWS: usize = 10_000_000;

/// The arrivals of a replay file's `text` (read from `path`).
pub fn replay_text(path: &str, text: &str) -> Result<Arrival, String> {
    let mut seconds = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let field = line.split(',').next().unwrap_or_default().trim();
        match field.parse::<f64>() {
            Ok(_) if seconds.len() == MAX_REPLAY_ROWS => {
                return Err(format!(
                    "the replay file {path} holds more than {MAX_REPLAY_ROWS} arrivals, more \
                     than any fleet runs"
                ));
            }
            Ok(s) if s.is_finite() && s >= 0.0 => seconds.push(s),
            Err(_) if seconds.is_empty() && n == 0 => {} // a header
            _ => {
                return Err(format!(
                    "the replay file {path}, line {}: {field:?} is not a time in seconds (a \
                     number from 0)",
                    n + 1
                ));
            }
        }
    }
    if seconds.is_empty() {
        return Err(format!("the replay file {path} holds no arrival"));
    }
    seconds.sort_by(f64::total_cmp);
    let first = seconds[0];
    let offsets_ms = seconds
        .iter()
        .map(|s| ((s - first) * 1000.0).round() as u64)
        .collect();
    Ok(Arrival::Replay {
        path: path.to_owned(),
        offsets_ms,
    })
}

impl fmt::Display for Arrival {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arrival::Even => f.write_str("even"),
            Arrival::Rate(r) => write!(f, "rate:{r}/s"),
            Arrival::Ramp { from, to, over_ms } => {
                write!(f, "ramp:{from}/s..{to}/s@{}", Span(*over_ms))
            }
            Arrival::Steps(steps) => {
                let steps: Vec<String> = steps
                    .iter()
                    .map(|(r, d)| format!("{r}/s@{}", Span(*d)))
                    .collect();
                write!(f, "steps:{}", steps.join(","))
            }
            Arrival::Poisson(r) => write!(f, "poisson:{r}/s"),
            Arrival::Replay { path, .. } => write!(f, "replay:{path}"),
        }
    }
}

/// A duration in the largest unit `--arrival` reads that holds it whole: `30s`, `10m`, `1500ms`.
struct Span(u64);

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        match [(3_600_000, "h"), (60_000, "m"), (1_000, "s")]
            .into_iter()
            .find(|(per, _)| ms % per == 0)
        {
            Some((per, unit)) => write!(f, "{}{unit}", ms / per),
            None => write!(f, "{ms}ms"),
        }
    }
}

impl serde::Serialize for Arrival {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Read back from a report (`otpfleet report merge`): the schedule as written; a replay names
/// its file, and its offsets, which stay in that file, are not read again.
impl<'de> serde::Deserialize<'de> for Arrival {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Arrival, D::Error> {
        let spec = String::deserialize(d)?;
        match spec.strip_prefix("replay:") {
            Some(path) => Ok(Arrival::Replay {
                path: path.to_owned(),
                offsets_ms: Arc::from([]),
            }),
            None => spec.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl Arrival {
    /// The consoles the schedule itself brings, where it fixes them: a ramp's or steps' stages
    /// their area (rounded to a whole console; the run has exactly that many), a replay file its
    /// rows (the run has at most that many). `None` where the count is the user's to give.
    pub fn fixed_count(&self) -> Option<u64> {
        let area = match self {
            Arrival::Ramp { from, to, over_ms } => (from + to) / 2.0 * *over_ms as f64 / 1000.0,
            Arrival::Steps(steps) => steps.iter().map(|(r, ms)| r * *ms as f64 / 1000.0).sum(),
            Arrival::Replay { offsets_ms, .. } => return Some(offsets_ms.len() as u64),
            _ => return None,
        };
        Some(area.round() as u64)
    }

    /// How long the stages of a ramp or steps last, milliseconds.
    pub fn stages_ms(&self) -> Option<u64> {
        match self {
            Arrival::Ramp { over_ms, .. } => Some(*over_ms),
            Arrival::Steps(steps) => Some(steps.iter().map(|(_, ms)| ms).sum()),
            _ => None,
        }
    }
}

/// The arrival times of one run's consoles.
#[derive(Debug, Clone)]
pub struct Schedule {
    arrival: Arrival,
    consoles: u64,
    window_ms: u64,
    /// A Poisson process's arrivals, drawn once for every console of the run.
    drawn_ms: Option<Arc<[u64]>>,
}

impl Schedule {
    /// The schedule of a run of `consoles` (the whole run's, not a shard's) with `seed`;
    /// `window_ms` is the even spread's window.
    pub fn new(arrival: &Arrival, consoles: u64, window_ms: u64, seed: u64) -> Schedule {
        let drawn_ms = match arrival {
            Arrival::Poisson(rate) => {
                let mut rng = stream_rng(seed, Stream::Arrivals);
                let mut t = 0.0f64;
                let times: Vec<u64> = (0..consoles)
                    .map(|_| {
                        let u: f64 = rng.random_range(f64::EPSILON..1.0);
                        t += -u.ln() / rate * 1000.0;
                        t as u64
                    })
                    .collect();
                Some(times.into())
            }
            _ => None,
        };
        Schedule {
            arrival: arrival.clone(),
            consoles,
            window_ms,
            drawn_ms,
        }
    }

    /// When console `index` arrives, milliseconds from the run's start.
    pub fn at_ms(&self, index: u64) -> u64 {
        let i = index as f64;
        let seconds = match &self.arrival {
            Arrival::Even => return self.window_ms * index / self.consoles.max(1),
            Arrival::Rate(r) => i / r,
            Arrival::Ramp { from, to, over_ms } => ramp_s(i, *from, *to, *over_ms as f64 / 1000.0),
            Arrival::Steps(steps) => steps_s(i, steps),
            Arrival::Poisson(_) | Arrival::Replay { .. } => {
                let times = match (&self.arrival, &self.drawn_ms) {
                    (Arrival::Replay { offsets_ms, .. }, _) => offsets_ms,
                    (_, Some(drawn)) => drawn,
                    _ => return 0,
                };
                let last = times.len().saturating_sub(1);
                return times.get(index as usize).copied().unwrap_or(times[last]);
            }
        };
        (seconds * 1000.0).round() as u64
    }
}

/// The time (s) at which `i` consoles have arrived under a ramp from `a` to `b` per second over
/// `d` seconds: the arrivals so far are `a t + (b - a) t² / 2d` (a run holds no more than the
/// ramp's area, so a later index is the ramp's end).
fn ramp_s(i: f64, a: f64, b: f64, d: f64) -> f64 {
    if i >= (a + b) / 2.0 * d {
        return d;
    }
    let k = (b - a) / (2.0 * d);
    if k.abs() < 1e-12 {
        return i / a;
    }
    (-a + (a * a + 4.0 * k * i).sqrt()) / (2.0 * k)
}

/// The time (s) at which `i` consoles have arrived under steps of rates held for durations (a
/// later index than the steps bring is their end).
fn steps_s(i: f64, steps: &[(f64, u64)]) -> f64 {
    let (mut t, mut so_far) = (0.0, 0.0);
    for (rate, ms) in steps {
        let d = *ms as f64 / 1000.0;
        if so_far + rate * d > i {
            return t + (i - so_far) / rate;
        }
        so_far += rate * d;
        t += d;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(spec: &str, n: u64) -> Vec<u64> {
        let schedule = Schedule::new(&spec.parse().expect("a schedule"), n, 10_000, 7);
        (0..n).map(|i| schedule.at_ms(i)).collect()
    }

    #[test]
    fn a_constant_rate_is_exact() {
        assert_eq!(times("rate:50/s", 5), [0, 20, 40, 60, 80]);
        assert_eq!(times("rate:3000/m", 3), [0, 20, 40]);
    }

    #[test]
    fn a_ramp_brings_its_area_of_consoles() {
        // 0 to 200/s over 10 s: 1,000 consoles, half of them in the last 2.93 s, the last at the
        // end of the ramp (its rate then 200/s).
        let ramp: Arrival = "ramp:0/s..200/s@10s".parse().expect("a ramp");
        assert_eq!(ramp.fixed_count(), Some(1_000));
        assert_eq!(ramp.stages_ms(), Some(10_000));
        let t = times("ramp:0/s..200/s@10s", 1_000);
        assert_eq!(t[0], 0);
        assert!((7_000..7_100).contains(&t[500]), "{}", t[500]);
        assert_eq!(t[999], 9_995, "the last arrives as the ramp ends");
        assert_eq!(t[998] - t[997], 5, "at 200/s");
        assert!(t.windows(2).all(|w| w[0] <= w[1]));
        let down: Arrival = "ramp:200/s..0/s@30s".parse().expect("a ramp down");
        assert_eq!(down.fixed_count(), Some(3_000));
    }

    #[test]
    fn steps_hold_each_rate() {
        let steps: Arrival = "steps:10/s@1s,0/s@2s,100/s@1s".parse().expect("steps");
        assert_eq!(steps.fixed_count(), Some(110));
        assert_eq!(steps.stages_ms(), Some(4_000));
        let t = times("steps:10/s@1s,0/s@2s,100/s@1s", 110);
        assert_eq!(&t[..3], [0, 100, 200]);
        assert_eq!(t[10], 3_000, "after the pause");
        assert_eq!(t[20], 3_100);
        assert_eq!(t[109], 3_990);
    }

    #[test]
    fn a_schedule_is_written_as_it_is_read() {
        for spec in [
            "ramp:0/s..200/s@30s",
            "steps:10/s@1m,50/s@5m,5/s@1500ms",
            "rate:0.5/s",
        ] {
            let arrival: Arrival = spec.parse().expect(spec);
            assert_eq!(arrival.to_string(), spec);
        }
    }

    #[test]
    fn poisson_arrivals_are_seeded_and_keep_their_mean() {
        let t = times("poisson:50/s", 5_000);
        assert_eq!(
            t,
            times("poisson:50/s", 5_000),
            "the same seed, the same arrivals"
        );
        // 5,000 arrivals at 50/s take about 100 s; the sum of 5,000 gaps has a standard
        // deviation of sqrt(5000)/50 = 1.4 s: 5 of them is 7 s.
        let last = t[4_999] as f64 / 1000.0;
        assert!((93.0..107.0).contains(&last), "{last}");
        // Counts per second are Poisson(50): none below 15 or above 95 in 100 seconds.
        let mut per_s = vec![0u32; 110];
        for ms in &t {
            per_s[(*ms / 1000) as usize] += 1;
        }
        assert!(
            per_s[..90].iter().all(|c| (15..95).contains(c)),
            "{per_s:?}"
        );
    }

    #[test]
    fn a_replay_file_is_read_sorted_and_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("arrivals.csv");
        std::fs::write(&path, "seconds,room\n100.5,a\n100,b\n\n# late\n160,c\n").expect("write");
        let spec = format!("replay:{}", path.display());
        assert_eq!(times(&spec, 3), [0, 500, 60_000]);
        std::fs::write(&path, "1\n2\nsoon\n").expect("write");
        let e = spec.parse::<Arrival>().expect_err("a bad line");
        assert!(e.contains("line 3") && e.contains("\"soon\""), "{e}");
    }

    #[test]
    fn malformed_schedules_name_the_part_and_the_forms() {
        for (spec, part) in [
            ("rate:50", "\"50\""),
            ("rate:0/s", "\"0/s\""),
            ("ramp:0/s..200/s", "\"0/s..200/s\""),
            ("ramp:0/s..200/s@10", "\"10\""),
            ("ramp:0/s..0/s@10s", "brings no console"),
            ("ramp:0/s..0.8/s@1s", "brings no console"),
            ("steps:10/s@1m,0/s@1m", "ends at 0/s"),
            ("burst:5/s", "\"burst\""),
            ("rate:2000000/s", "outside"),
        ] {
            let e = spec.parse::<Arrival>().expect_err(spec);
            assert!(e.contains(part) && e.contains(FORMS), "{spec}: {e}");
        }
    }

    #[test]
    fn shards_together_arrive_as_the_whole_run() {
        for spec in ["even", "rate:100/s", "poisson:80/s", "ramp:10/s..50/s@5s"] {
            let whole = times(spec, 1_000);
            let schedule = Schedule::new(&spec.parse().expect("spec"), 1_000, 10_000, 7);
            for shard in 0..3 {
                for i in (shard..1_000).step_by(3) {
                    assert_eq!(schedule.at_ms(i), whole[i as usize], "{spec}");
                }
            }
        }
    }
}
