//! Histogram logs crafted to take the reader down (found by trying, issue 29): each is refused
//! with the file and the reason, before anything the size of its claims is allocated.

use crate::runs;
use base64::Engine as _;
use otpfleet_reports::{IntervalLine, read_run_folder, write_log};
use std::io::Write as _;
use std::path::Path;

const V2: u32 = 0x1c84_9313;
const V2_COMPRESSED: u32 = 0x1c84_9314;

/// A V2 histogram head: payload length, digits, lowest and highest value, and `counts` after.
fn v2(payload_len: u32, digits: u32, highest: u64, counts: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(V2.to_be_bytes());
    b.extend(payload_len.to_be_bytes());
    b.extend(0u32.to_be_bytes());
    b.extend(digits.to_be_bytes());
    b.extend(1u64.to_be_bytes());
    b.extend(highest.to_be_bytes());
    b.extend(1.0f64.to_be_bytes());
    b.extend(counts);
    b
}

fn compressed(plain: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(plain).unwrap();
    let zlib = z.finish().unwrap();
    let mut b = V2_COMPRESSED.to_be_bytes().to_vec();
    b.extend(u32::try_from(zlib.len()).unwrap().to_be_bytes());
    b.extend(zlib);
    b
}

/// A run folder whose `redeem.service.hlog` holds `lines` copies of the histogram `bytes`; the
/// error reading it back.
fn read_with(dir: &Path, bytes: &[u8], lines: usize) -> String {
    runs::write(dir, 7, (0, 1), 20);
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let lines: Vec<IntervalLine> = (0..lines as u64)
        .map(|i| IntervalLine {
            start_ms: i * 1000,
            length_ms: 1000,
            max_us: 1,
            encoded: encoded.clone(),
        })
        .collect();
    let mut log = Vec::new();
    write_log("crafted", &lines, &mut log).unwrap();
    std::fs::write(dir.join("redeem.service.hlog"), log).unwrap();
    let err = read_run_folder(dir).expect_err("refused").to_string();
    assert!(err.contains("redeem.service.hlog"), "names the file: {err}");
    err
}

#[test]
fn a_line_claiming_two_gigabytes_is_refused_by_what_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let inner = v2(i32::MAX as u32, 3, 1_000_000, &[2]);
    let err = read_with(dir.path(), &compressed(&inner), 1);
    assert!(
        err.contains("claims 2147483647 bytes of counts and holds 1"),
        "{err}"
    );
    let mut outer = compressed(&inner);
    outer[4..8].copy_from_slice(&(i32::MAX as u32).to_be_bytes());
    let err = read_with(dir.path(), &outer, 1);
    assert!(err.contains("claims 2147483647 compressed bytes"), "{err}");
}

#[test]
fn a_zlib_bomb_is_refused_once_it_outgrows_any_histogram() {
    let dir = tempfile::tempdir().unwrap();
    // 64 MiB of zero counts compress to about 64 KiB.
    let inner = v2(64 << 20, 3, 1_000_000, &vec![0; 64 << 20]);
    let bomb = compressed(&inner);
    assert!(bomb.len() < 256 * 1024, "{} bytes", bomb.len());
    let err = read_with(dir.path(), &bomb, 1);
    assert!(err.contains("decompresses to more than"), "{err}");
}

#[test]
fn more_precision_than_recorded_and_more_lines_than_any_run_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let wide = v2(0, 5, 1 << 62, &[]);
    let err = read_with(dir.path(), &compressed(&wide), 1);
    assert!(err.contains("5 significant digits"), "{err}");
    let small = v2(0, 3, 1_000_000, &[]);
    let err = read_with(dir.path(), &compressed(&small), 2_000);
    assert!(err.contains("more than 1200 intervals"), "{err}");
}
