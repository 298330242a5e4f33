//! A fuzz pass over the parsers of every file the tools read (issue 29): rehearsal plans, replay
//! files, `report.json`, histogram logs, the catalogue, and the arrival and threshold specs of
//! the command line. Seeds are real files (the shipped plans, the run folder of a fleet run
//! here, the built-in catalogue), mutated by proptest: bytes flipped, inserted, cut and
//! repeated, numbers swapped for extreme ones; histogram logs also at the level of their
//! encoded histograms (headers claiming any size, precision and range). No input may panic,
//! abort, or allocate more than a bound proportional to its size: a counting allocator measures
//! each parse.
//!
//! Cases per parser: `FUZZ_CASES` (default 256; CI runs more). Failures replay from the seed
//! proptest prints and keeps in `tests/fuzz/main.proptest-regressions`.

#![allow(clippy::unwrap_used)] // A test that unwraps fails with the value in its message.

use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

#[global_allocator]
static ALLOCATOR: &peakmem_alloc::PeakMemAlloc<std::alloc::System> =
    &peakmem_alloc::INSTRUMENTED_SYSTEM;

/// Runs `parse` on `input`, failing the case when it allocates more than 64 MiB plus 64 times
/// the input at any moment. The parsers run one at a time (one test function), so no other
/// thread's allocations are counted.
fn bounded<R>(input_len: usize, parse: impl FnOnce() -> R) -> Result<R, TestCaseError> {
    use peakmem_alloc::PeakMemAllocTrait as _;
    ALLOCATOR.reset_peak_memory();
    let result = parse();
    let peak = ALLOCATOR.get_peak_memory();
    let bound = (64 << 20) + 64 * input_len;
    prop_assert!(
        peak <= bound,
        "{peak} bytes allocated for a {input_len}-byte input (bound {bound})"
    );
    Ok(result)
}

fn config() -> ProptestConfig {
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// One change to a seed.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Cut(usize, usize),
    Repeat(usize, usize, usize),
    /// The number at or after a position swapped for an extreme one.
    Number(usize, &'static str),
}

const EXTREMES: &[&str] = &[
    "0",
    "-1",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "4294967296",
    "1e308",
    "-1e308",
    "NaN",
    "0.00000001",
    "100000000000",
    "9999",
    "99999999999999999999999999",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Flip(at, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        (any::<usize>(), 1..64usize).prop_map(|(at, n)| Mutation::Cut(at, n)),
        (any::<usize>(), 1..256usize, 1..64usize)
            .prop_map(|(at, n, times)| Mutation::Repeat(at, n, times)),
        (any::<usize>(), prop::sample::select(EXTREMES))
            .prop_map(|(at, n)| Mutation::Number(at, n)),
    ]
}

fn mutated(seed: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for m in mutations {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
        match m {
            Mutation::Flip(i, x) if !b.is_empty() => {
                let i = at(*i, b.len());
                b[i] ^= x;
            }
            Mutation::Insert(i, bytes) => {
                let i = at(*i, b.len() + 1);
                b.splice(i..i, bytes.iter().copied());
            }
            Mutation::Cut(i, n) if !b.is_empty() => {
                let i = at(*i, b.len());
                let end = (i + n).min(b.len());
                b.drain(i..end);
            }
            Mutation::Repeat(i, n, times) if !b.is_empty() => {
                let i = at(*i, b.len());
                let end = (i + n).min(b.len());
                let piece = b[i..end].to_vec();
                for _ in 0..*times {
                    b.splice(end..end, piece.iter().copied());
                }
            }
            Mutation::Number(i, n) => {
                let start = at(*i, b.len() + 1);
                let Some(from) = b[start..].iter().position(u8::is_ascii_digit) else {
                    continue;
                };
                let from = start + from;
                let len = b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
                b.splice(from..from + len, n.bytes());
            }
            _ => {}
        }
    }
    b
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..8)
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A fleet's run folder, run once here: its report.json and histogram logs are the seeds.
fn run_folder() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("otpfleet-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_otpfleet"))
            .args([
                "fleet",
                "--consoles",
                "60",
                "--seed",
                "5",
                "--quiet",
                "--out",
            ])
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        dir
    })
}

fn plans() -> Vec<Vec<u8>> {
    let dir = root().join("scenarios/rollouts");
    let mut plans: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    plans.sort();
    plans
}

fn hlogs() -> Vec<Vec<u8>> {
    let mut logs: Vec<Vec<u8>> = std::fs::read_dir(run_folder())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "hlog"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    logs.sort();
    logs
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every parser in turn, `FUZZ_CASES` cases each; one function, so the allocation counts are
/// each parser's own.
#[test]
fn no_file_the_tools_read_panics_or_allocates_without_bound() {
    let started = std::time::Instant::now();
    let plans = plans();
    proptest!(config(), |(seed in prop::sample::select(plans.clone()), m in mutations())| {
        let input = text(&mutated(&seed, &m));
        let _ = bounded(input.len(), || otpfleet_emulator::rehearsal::plan::compile(&input))?;
    });
    proptest!(config(), |(
        lines in prop::collection::vec(
            prop_oneof![
                (0.0..1e6f64).prop_map(|s| s.to_string()),
                prop::sample::select(EXTREMES).prop_map(str::to_owned),
                "[ -~]{0,24}",
            ],
            0..200,
        ),
        m in mutations(),
    )| {
        let input = text(&mutated(lines.join("\n").as_bytes(), &m));
        let _ = bounded(input.len(), || otpfleet_emulator::arrival::replay_text("fuzz.csv", &input))?;
    });
    let report = std::fs::read(run_folder().join("report.json")).unwrap();
    proptest!(config(), |(m in mutations())| {
        let input = text(&mutated(&report, &m));
        let _ = bounded(input.len(), || {
            otpfleet_reports::parse_report(Path::new("report.json"), &input)
        })?;
    });
    let logs = hlogs();
    proptest!(config(), |(seed in prop::sample::select(logs.clone()), m in mutations())| {
        let input = mutated(&seed, &m);
        let _ = bounded(input.len(), || {
            otpfleet_reports::read_log(&input).and_then(|lines| otpfleet_reports::total_of(&lines))
        })?;
    });
    proptest!(config(), |(
        seed in prop::sample::select(logs.clone()),
        header in prop::collection::vec((0..40usize, any::<u8>()), 0..6),
        m in mutations(),
        compress in any::<bool>(),
    )| {
        let line = encoded_line(&seed, &header, &m, compress);
        let _ = bounded(line.len(), || {
            otpfleet_reports::read_log(line.as_bytes())
                .and_then(|lines| otpfleet_reports::total_of(&lines))
        })?;
    });
    let catalogue = std::fs::read(root().join("server/catalogue.json")).unwrap();
    proptest!(config(), |(m in mutations())| {
        let input = text(&mutated(&catalogue, &m));
        let _ = bounded(input.len(), || otpfleet_server::Catalogue::from_json(&input))?;
    });
    proptest!(config(), |(
        spec in prop_oneof![
            "(even|rate|ramp|steps|poisson):[0-9./sminh@,]{0,40}",
            "[a-z_.]{1,30} *(<|<=|>|>=) *[0-9.eE+-]{1,30}",
            "[ -~]{0,60}",
        ],
    )| {
        let _ = bounded(spec.len(), || spec.parse::<otpfleet_emulator::arrival::Arrival>())?;
        let _ = bounded(spec.len(), || spec.parse::<otpfleet_reports::Threshold>())?;
    });
    eprintln!(
        "fuzz: 7 parsers, {} cases each, {:.1} s",
        config().cases,
        started.elapsed().as_secs_f64()
    );
}

/// A log line whose histogram is a real one with its V2 bytes changed: `header` sets bytes of
/// the 40-byte header (the payload length, precision, range), `m` mutates the rest; compressed
/// again when `compress`.
fn encoded_line(seed: &[u8], header: &[(usize, u8)], m: &[Mutation], compress: bool) -> String {
    use base64::Engine as _;
    use std::io::{Read as _, Write as _};
    let b64 = base64::engine::general_purpose::STANDARD;
    let log = text(seed);
    let line = log
        .lines()
        .find(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or("0.000,1.000,1.000,HISTFAAAABx4nJNpmSzMwMDAwQABzFCaEUoDAA6RAIw=");
    let (head, encoded) = line.rsplit_once(',').unwrap();
    let outer = b64.decode(encoded).unwrap_or_default();
    let mut plain = Vec::new();
    if outer.len() > 8 {
        let _ = flate2::read::ZlibDecoder::new(&outer[8..]).read_to_end(&mut plain);
    }
    for (at, byte) in header {
        if let Some(b) = plain.get_mut(*at) {
            *b = *byte;
        }
    }
    let plain = mutated(&plain, m);
    let bytes = if compress {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&plain).unwrap();
        let zlib = z.finish().unwrap();
        let mut b = 0x1c84_9314u32.to_be_bytes().to_vec();
        b.extend(u32::try_from(zlib.len()).unwrap_or(u32::MAX).to_be_bytes());
        b.extend(zlib);
        b
    } else {
        plain
    };
    format!("{head},{}\n", b64.encode(bytes))
}
