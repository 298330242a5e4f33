//! Figures over time: a run's histograms interval by interval, kept as lines of HdrHistogram
//! interval logs (the format Java's `HistogramLogWriter` writes and every HdrHistogram reader
//! reads: `start,length,max,base64(compressed V2 histogram)`), and the points report.json
//! carries (requests per second, response and service p50/p99 per step and interval).
//!
//! Lines are kept encoded (a few hundred bytes each) rather than as histograms (hundreds of
//! kilobytes each at the full range), so a long run's intervals cost little memory.

use crate::views::{MAX_COUNT, View, ViewHistograms, new_histogram};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry,
};
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

/// Most intervals a run's logs hold: a longer run gets longer intervals.
pub const MAX_INTERVALS: u64 = 600;

/// The interval length for a run that lasts at most `longest`: one second, or longer so that
/// the run has at most `MAX_INTERVALS` (whole seconds).
pub fn interval_length(longest: Duration) -> Duration {
    Duration::from_secs(longest.as_secs().div_ceil(MAX_INTERVALS).max(1))
}

/// One interval of one histogram, encoded as an interval log line holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntervalLine {
    /// From the run's start, in milliseconds (the log's precision).
    pub start_ms: u64,
    pub length_ms: u64,
    pub max_us: u64,
    /// Base64 of the compressed V2 histogram.
    pub encoded: String,
}

impl IntervalLine {
    pub fn encode(h: &Histogram<u64>, start: Duration, length: Duration) -> IntervalLine {
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(h, &mut bytes)
            .expect("serializing into memory cannot fail");
        IntervalLine {
            start_ms: millis(start),
            length_ms: millis(length),
            max_us: h.max(),
            encoded: BASE64.encode(bytes),
        }
    }

    pub fn decode(&self) -> Result<Histogram<u64>, String> {
        decode(&self.encoded)
    }

    pub fn start(&self) -> Duration {
        Duration::from_millis(self.start_ms)
    }

    pub fn length(&self) -> Duration {
        Duration::from_millis(self.length_ms)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The longest encoded histogram of a log line read: far above any otpfleet writes (a few
/// kilobytes; a histogram of 36,000 distinct counts compresses to about 300 KiB).
pub const MAX_ENCODED_BYTES: usize = 512 * 1024;
/// The most a histogram of a log line may decompress to: the V2 header and a varint of up to 9
/// bytes for each of the 57,000 counts of the widest histogram read (3 digits over 2^63).
const MAX_DECOMPRESSED_BYTES: u64 = 40 + 57_000 * 9;
/// The most significant digits of a histogram read: otpfleet records 3. Each digit more
/// multiplies a histogram's counts by 10 (5 digits over the full range: 6 million counts, half
/// a second to decode a line).
const MAX_DIGITS: u32 = 3;
/// The cookies of HdrHistogram's V2 encoding, plain and compressed (with the word size 8).
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;

/// Decodes one histogram of a log line, bounded by what otpfleet's histograms can be, whatever
/// the line claims: its size, what it decompresses to, its precision and its total count are
/// checked before anything is allocated for them (a 100-byte line once claimed a 2 GiB payload
/// and had 2 GiB allocated; a 1 MiB zlib bomb, 992 MB).
fn decode(encoded: &str) -> Result<Histogram<u64>, String> {
    let encoded = encoded.trim();
    if encoded.len() > MAX_ENCODED_BYTES {
        return Err(format!(
            "a histogram in the log is {} bytes of base64, more than any otpfleet reads \
             ({MAX_ENCODED_BYTES})",
            encoded.len()
        ));
    }
    let bytes = BASE64
        .decode(encoded)
        .map_err(|e| format!("a histogram in the log is not base64: {e}"))?;
    let plain = decompressed(&bytes)?;
    check_header(&plain)?;
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut io::Cursor::new(plain))
        .map_err(|e| format!("a histogram in the log does not decode: {e:?}"))?;
    if h.len() > MAX_COUNT {
        return Err(format!(
            "a histogram in the log counts {} values, more than any run records ({})",
            h.len(),
            MAX_COUNT
        ));
    }
    // A log written by another tool may use other bounds: carry it into ours.
    let mut ours = new_histogram();
    ours.add(&h)
        .map_err(|e| format!("a histogram in the log holds values out of range: {e:?}"))?;
    Ok(ours)
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// The V2 histogram `bytes` hold, decompressed when they are compressed, and refused when it
/// would be larger than any histogram read.
fn decompressed(bytes: &[u8]) -> Result<Vec<u8>, String> {
    use io::Read as _;
    match be_u32(bytes, 0) {
        Some(V2_COOKIE) => Ok(bytes.to_vec()),
        Some(V2_COMPRESSED_COOKIE) => {
            let claimed = be_u32(bytes, 4).ok_or("a histogram in the log is cut short")?;
            let zlib = &bytes[8..];
            if claimed as usize != zlib.len() {
                return Err(format!(
                    "a histogram in the log claims {claimed} compressed bytes and holds {}",
                    zlib.len()
                ));
            }
            let mut plain = Vec::new();
            flate2::read::ZlibDecoder::new(zlib)
                .take(MAX_DECOMPRESSED_BYTES + 1)
                .read_to_end(&mut plain)
                .map_err(|e| format!("a histogram in the log does not decompress: {e}"))?;
            if plain.len() as u64 > MAX_DECOMPRESSED_BYTES {
                return Err(format!(
                    "a histogram in the log decompresses to more than {MAX_DECOMPRESSED_BYTES} \
                     bytes, more than any histogram holds"
                ));
            }
            Ok(plain)
        }
        _ => Err("a histogram in the log is not an HdrHistogram V2 encoding".into()),
    }
}

/// Refuses a V2 histogram whose header claims more than its bytes hold, or more precision
/// than otpfleet reads.
fn check_header(plain: &[u8]) -> Result<(), String> {
    const HEADER: usize = 40;
    let field = |at| be_u32(plain, at).ok_or("a histogram in the log is cut short");
    let payload = field(4)? as usize;
    if payload > plain.len().saturating_sub(HEADER) {
        return Err(format!(
            "a histogram in the log claims {payload} bytes of counts and holds {}",
            plain.len().saturating_sub(HEADER)
        ));
    }
    let digits = field(12)?;
    if digits > MAX_DIGITS {
        return Err(format!(
            "a histogram in the log has {digits} significant digits; otpfleet reads up to \
             {MAX_DIGITS}, the precision it records"
        ));
    }
    Ok(())
}

/// Writes an interval log: a `#comment` line and the header, then one line per interval.
pub fn write_log(
    comment: &str,
    lines: &[IntervalLine],
    out: &mut impl io::Write,
) -> io::Result<()> {
    let mut serializer = V2DeflateSerializer::new();
    IntervalLogWriterBuilder::new()
        .add_comment(comment)
        .begin_log_with(&mut *out, &mut serializer)?;
    for l in lines {
        writeln!(
            out,
            "{}.{:03},{}.{:03},{}.000,{}",
            l.start_ms / 1000,
            l.start_ms % 1000,
            l.length_ms / 1000,
            l.length_ms % 1000,
            l.max_us,
            l.encoded
        )?;
    }
    Ok(())
}

/// The most intervals a log read may hold: otpfleet writes at most [`MAX_INTERVALS`].
pub const MAX_LOG_LINES: usize = 2 * MAX_INTERVALS as usize;

/// Reads every interval of an interval log (at most [`MAX_LOG_LINES`]).
pub fn read_log(bytes: &[u8]) -> Result<Vec<IntervalLine>, String> {
    let mut lines = Vec::new();
    for entry in IntervalLogIterator::new(bytes) {
        let entry = entry.map_err(|e| format!("not an HdrHistogram interval log: {e:?}"))?;
        if let LogEntry::Interval(i) = entry {
            if lines.len() == MAX_LOG_LINES {
                return Err(format!(
                    "more than {MAX_LOG_LINES} intervals, more than any run's log (otpfleet \
                     writes at most {MAX_INTERVALS})"
                ));
            }
            lines.push(IntervalLine {
                start_ms: (i.start_timestamp().as_secs_f64() * 1000.0).round() as u64,
                length_ms: (i.duration().as_secs_f64() * 1000.0).round() as u64,
                max_us: i.max().round() as u64,
                encoded: i.encoded_histogram().to_owned(),
            });
        }
    }
    Ok(lines)
}

/// Adds every interval of a log into one histogram.
pub fn total_of(lines: &[IntervalLine]) -> Result<Histogram<u64>, String> {
    let mut total = new_histogram();
    for l in lines {
        total
            .add(l.decode()?)
            .map_err(|e| format!("the log's intervals do not add up: {e:?}"))?;
    }
    Ok(total)
}

/// Adds two logs of the same step and view (two shards of a run): intervals that start at the
/// same moment are added, the others kept, in order of start.
pub fn add_logs(
    mine: &[IntervalLine],
    theirs: &[IntervalLine],
) -> Result<Vec<IntervalLine>, String> {
    let mut by_start: BTreeMap<(u64, u64), Vec<&IntervalLine>> = BTreeMap::new();
    for l in mine.iter().chain(theirs) {
        by_start
            .entry((l.start_ms, l.length_ms))
            .or_default()
            .push(l);
    }
    by_start
        .into_values()
        .map(|same| {
            if let [one] = same.as_slice() {
                return Ok((*one).clone());
            }
            let first = same[0];
            let owned: Vec<IntervalLine> = same.into_iter().cloned().collect();
            let h = total_of(&owned)?;
            Ok(IntervalLine::encode(&h, first.start(), first.length()))
        })
        .collect()
}

/// One step in one interval, as report.json's `over_time` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct IntervalStep {
    /// Real requests answered in the interval.
    pub requests: u64,
    pub rps: f64,
    pub response_p50_us: u64,
    pub response_p99_us: u64,
    pub service_p50_us: u64,
    pub service_p99_us: u64,
}

impl IntervalStep {
    /// The point of one interval from its response and service histograms.
    pub fn from_views(
        response: &Histogram<u64>,
        service: &Histogram<u64>,
        length: Duration,
    ) -> Self {
        let q = |h: &Histogram<u64>, q: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(q)
            }
        };
        let requests = service.len();
        let secs = length.as_secs_f64();
        IntervalStep {
            requests,
            rps: if secs > 0.0 {
                (requests as f64 / secs * 10.0).round() / 10.0
            } else {
                0.0
            },
            response_p50_us: q(response, 0.50),
            response_p99_us: q(response, 0.99),
            service_p50_us: q(service, 0.50),
            service_p99_us: q(service, 0.99),
        }
    }

    pub fn of(views: &ViewHistograms, length: Duration) -> Self {
        IntervalStep::from_views(views.get(View::Response), views.get(View::Service), length)
    }
}

/// The steps of one interval.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct IntervalPoint {
    /// From the run's start.
    pub start_s: f64,
    pub length_s: f64,
    pub steps: BTreeMap<String, IntervalStep>,
}

impl IntervalPoint {
    pub fn new(start: Duration, length: Duration) -> IntervalPoint {
        IntervalPoint {
            start_s: millis(start) as f64 / 1000.0,
            length_s: millis(length) as f64 / 1000.0,
            steps: BTreeMap::new(),
        }
    }
}

/// The points over time of logs by (step, view): per interval, each step's response and
/// service percentiles (the logs of a merged run, where no live histogram is left).
pub fn points_of(
    lines: &BTreeMap<(String, View), Vec<IntervalLine>>,
) -> Result<Vec<IntervalPoint>, String> {
    let empty = Vec::new();
    let mut points: BTreeMap<(u64, u64), IntervalPoint> = BTreeMap::new();
    let steps: Vec<&String> = lines.keys().map(|(s, _)| s).collect();
    for step in steps.into_iter().collect::<std::collections::BTreeSet<_>>() {
        let response = lines.get(&(step.clone(), View::Response)).unwrap_or(&empty);
        let service = lines.get(&(step.clone(), View::Service)).unwrap_or(&empty);
        let mut by_start: BTreeMap<(u64, u64), (Histogram<u64>, Histogram<u64>)> = BTreeMap::new();
        for (line, is_service) in response
            .iter()
            .map(|l| (l, false))
            .chain(service.iter().map(|l| (l, true)))
        {
            let (r, s) = by_start
                .entry((line.start_ms, line.length_ms))
                .or_insert_with(|| (new_histogram(), new_histogram()));
            let target = if is_service { s } else { r };
            target
                .add(line.decode()?)
                .map_err(|e| format!("step {step}: intervals do not add up: {e:?}"))?;
        }
        for ((start_ms, length_ms), (r, s)) in by_start {
            let length = Duration::from_millis(length_ms);
            points
                .entry((start_ms, length_ms))
                .or_insert_with(|| IntervalPoint::new(Duration::from_millis(start_ms), length))
                .steps
                .insert(step.clone(), IntervalStep::from_views(&r, &s, length));
        }
    }
    Ok(points.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(values: &[u64]) -> Histogram<u64> {
        let mut h = new_histogram();
        for v in values {
            h.record(*v).expect("in range");
        }
        h
    }

    #[test]
    fn logs_round_trip_through_hdrhistograms_reader() {
        let a = histogram(&[10, 20, 3_000_000_000_000]);
        let b = histogram(&[5]);
        let lines = vec![
            IntervalLine::encode(&a, Duration::ZERO, Duration::from_millis(1500)),
            IntervalLine::encode(&b, Duration::from_millis(1500), Duration::from_secs(1)),
        ];
        let mut log = Vec::new();
        write_log("otpfleet step redeem", &lines, &mut log).expect("write");
        let text = String::from_utf8(log.clone()).expect("text");
        assert!(text.starts_with("#otpfleet step redeem"), "{text}");
        let back = read_log(&log).expect("read");
        assert_eq!(back, lines);
        let mut both = a.clone();
        both.add(&b).expect("add");
        assert_eq!(total_of(&back).expect("total"), both);
    }

    #[test]
    fn shards_add_interval_by_interval() {
        let one = vec![IntervalLine::encode(
            &histogram(&[1, 2]),
            Duration::ZERO,
            Duration::from_secs(1),
        )];
        let two = vec![
            IntervalLine::encode(&histogram(&[3]), Duration::ZERO, Duration::from_secs(1)),
            IntervalLine::encode(
                &histogram(&[4]),
                Duration::from_secs(1),
                Duration::from_secs(1),
            ),
        ];
        let sum = add_logs(&one, &two).expect("add");
        assert_eq!(sum.len(), 2);
        assert_eq!(sum[0].decode().expect("decode").len(), 3);
        assert_eq!(total_of(&sum).expect("total").len(), 4);
    }
}
