//! The fleet drives the reference server on a simulated disk through seeded crashes
//! (`otpfleet_emulator::simulate`): no promise breaks, a seed replays byte for byte, and the
//! planted defects are caught.

use otpfleet_emulator::simulate::{SimOptions, Survived, simulate};
use otpfleet_server::simdisk::Defect;

fn options(seed: u64, planted: Option<Defect>) -> SimOptions {
    SimOptions {
        seed,
        consoles: 100,
        planted,
    }
}

#[test]
fn seeded_crashes_under_the_fleet_break_no_promise() {
    let mut total = Survived::default();
    for seed in 1..=3 {
        let s = simulate(&options(seed, None)).unwrap_or_else(|b| panic!("{b}"));
        eprintln!("simulate: seed {seed}: {s:?}");
        assert!(
            s.crashes > 3,
            "seed {seed} crashed the server {} times",
            s.crashes
        );
        assert!(
            s.signed_in > 10,
            "seed {seed}: {} consoles signed in",
            s.signed_in
        );
        total.crashes += s.crashes;
        total.acknowledged += s.acknowledged;
    }
    assert!(total.acknowledged > 300, "{total:?}");
}

/// The same seed is the same run: the same crashes, faults, answers and consoles signed in,
/// and the same bytes on the disk at the end.
#[test]
fn a_seed_replays_byte_for_byte() {
    for seed in [4, 5] {
        let first = simulate(&options(seed, None)).unwrap_or_else(|b| panic!("{b}"));
        let again = simulate(&options(seed, None)).unwrap_or_else(|b| panic!("{b}"));
        assert_eq!(first, again, "seed {seed} did not replay");
    }
}

/// Runs `defect` planted under `seed`, which must find it with a failure that says `says`.
fn caught(defect: Defect, seed: u64, says: &str) {
    match simulate(&options(seed, Some(defect))) {
        Err(b) if b.what.contains(says) => eprintln!("simulate: planted {defect:?}: {b}"),
        other => panic!("seed {seed} did not find the planted {defect:?}: {other:?}"),
    }
}

/// Each planted defect is caught by seed 1 of the fleet's simulation: acknowledging before the
/// sync (what a power loss leaves does not even open), a recovery that skips the last group
/// commit (an acknowledged hand-over is gone), a refused import journaled, and answers that do
/// not wait for the journal (an acknowledged import is gone after a crash).
#[test]
fn planted_defects_are_caught_under_the_fleet() {
    caught(Defect::LyingSync, 1, "the server cannot start");
    caught(
        Defect::SkipLastGroup,
        1,
        "req_3 was handed its credentials and is now Approved",
    );
    caught(
        Defect::JournalRefusedImport,
        1,
        "the refused import of desk-1-0@sim.test was applied",
    );
    caught(
        Defect::ShowBeforeKept,
        1,
        "acknowledged account acc_1 was lost",
    );
}

/// A change the journal failed to keep (its sync failed, its write may be on the disk) was
/// refused at once, and a crash before the recovery brought it back: found by this simulation
/// (seed 923364416), now refused only once the recovery removed it. Planted, seed 60 finds it
/// (the first of seeds 1 to 100 that does); the real server passes the same seed.
#[test]
fn a_refusal_a_crash_undoes_is_caught_and_the_server_passes() {
    caught(
        Defect::RefuseBeforeKept,
        60,
        "the refused import of desk-10-0@sim.test was applied",
    );
    simulate(&options(60, None)).unwrap_or_else(|b| panic!("{b}"));
}
