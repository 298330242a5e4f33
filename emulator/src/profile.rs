//! Each console's choices, drawn once from its own ChaCha stream: (seed, console index) decides
//! the make, model, serial, faults and typos, whatever the scheduling.

use crate::config::{FleetConfig, MsRange, Rate};
pub use crate::streams::{Stream, console_rng, stream_rng};
use fake::Fake as _;
use fake::faker::number::raw::NumberWithFormat;
use fake::locales::EN;
use otpfleet_protocol::{OTP_ALPHABET, RejectReason};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A make and model with how its serial numbers look (`#` a digit, `^` a non-zero digit,
/// `@` an upper-case letter or digit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Model {
    pub make: &'static str,
    pub model: &'static str,
    pub certified: bool,
    serial_format: &'static str,
}

const fn model(
    make: &'static str,
    model: &'static str,
    certified: bool,
    serial_format: &'static str,
) -> Model {
    Model {
        make,
        model,
        certified,
        serial_format,
    }
}

/// The emulator's catalogue: the certified models of the reference server's default catalogue
/// and two uncertified ones.
pub const MODELS: &[Model] = &[
    model("Logitech", "Tap", true, "2^##LZ0@@@@@"),
    model("Logitech", "Rally Bar", true, "2^##LZR@@@@@"),
    model("Poly", "TC8", true, "8L2^########"),
    model("Yealink", "MTouch II", true, "8031^##########"),
    model("Lenovo", "ThinkSmart Hub", true, "SM0@@@@@"),
    model("Crestron", "Flex UC-C", true, "19^#JBH#####"),
    model("Neat", "Pad", true, "NF^#########"),
    model("Generic", "NUC", false, "NUC^#######"),
    model("Raspberry", "Pi 4", false, "10000000^#######"),
];

/// Most mistyped attempts a console makes before it types the OTP right.
pub const MAX_TYPOS: u32 = 3;

/// Everything a console will do, decided up front.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleProfile {
    pub index: u64,
    pub model: Model,
    pub serial: String,
    pub hdmi_missing: bool,
    pub manual: bool,
    pub late: bool,
    /// Its OTP is also typed on a twin console at the same moment.
    pub race: bool,
    /// It asks for its credentials a second time (and once when refused or expired).
    pub double_sign_in: bool,
    /// Mistyped attempts before the right one.
    pub typos: u32,
    /// The character positions and replacements of each typo.
    pub typo_edits: Vec<(usize, u8)>,
    pub arrival_ms: u64,
    pub boot_ms: u64,
    pub reboot_ms: u64,
    pub think_ms: u64,
    pub typing_ms: u64,
    pub hdmi_fix_ms: u64,
    /// Seed of the console's stream for draws made during the flow (network faults).
    pub flow_seed: u64,
}

/// Console `index`'s generator for the faults that test the server's promises: apart from its
/// own, so every other draw of every seed stays as it was.
fn promises_rng(seed: u64, index: u64) -> ChaCha8Rng {
    console_rng(seed ^ 0x5052_4F4D_4953_4553, index)
}

fn chance(rng: &mut ChaCha8Rng, rate: Rate) -> bool {
    rng.random::<f64>() < rate.get()
}

fn draw(rng: &mut ChaCha8Rng, range: MsRange) -> u64 {
    rng.random_range(range.min_ms()..=range.max_ms())
}

impl ConsoleProfile {
    /// Draws console `index` of a run. The order of draws is fixed: changing it changes every
    /// console of every seed, so append new draws at the end.
    pub fn draw(cfg: &FleetConfig, index: u64) -> ConsoleProfile {
        let mut rng = console_rng(cfg.seed, index);
        let r = &cfg.rates;
        let uncertified = chance(&mut rng, r.uncertified);
        let pool: Vec<&Model> = MODELS
            .iter()
            .filter(|m| m.certified != uncertified)
            .collect();
        let model = *pool[rng.random_range(0..pool.len())];
        let serial = serial(&mut rng, model.serial_format);
        let hdmi_missing = chance(&mut rng, r.hdmi_missing);
        let manual = chance(&mut rng, r.manual);
        let late = chance(&mut rng, r.late);
        let mut typos = 0;
        while typos < MAX_TYPOS && chance(&mut rng, r.typo) {
            typos += 1;
        }
        let typo_edits = (0..typos)
            .map(|_| {
                (
                    rng.random_range(0..16),
                    OTP_ALPHABET[rng.random_range(0..OTP_ALPHABET.len())],
                )
            })
            .collect();
        let t = &cfg.timing;
        ConsoleProfile {
            index,
            model,
            serial,
            hdmi_missing,
            manual,
            late,
            typos,
            typo_edits,
            arrival_ms: t.arrival_window_ms * index / cfg.consoles.max(1),
            boot_ms: draw(&mut rng, t.boot),
            reboot_ms: draw(&mut rng, t.boot),
            think_ms: draw(&mut rng, t.think),
            typing_ms: draw(&mut rng, t.typing),
            hdmi_fix_ms: draw(&mut rng, t.hdmi_fix),
            flow_seed: rng.random(),
            // Drawn from a stream of their own, so that turning them on changes no other draw.
            race: chance(&mut promises_rng(cfg.seed, index), r.race),
            double_sign_in: chance(&mut promises_rng(cfg.seed ^ 1, index), r.double_sign_in),
        }
    }

    /// What the installer types on attempt `attempt` (0-based): a mistyped OTP for the first
    /// `typos` attempts, then the OTP itself.
    pub fn typed_otp(&self, otp: &str, attempt: u32) -> String {
        let Some(&(pos, replacement)) = self.typo_edits.get(attempt as usize) else {
            return otp.to_owned();
        };
        let mut letters: Vec<u8> = otp.bytes().filter(|b| *b != b'-').collect();
        if let Some(c) = letters.get_mut(pos) {
            // A typo always changes the letter: the next one in the alphabet if it would not.
            *c = if *c == replacement {
                let i = OTP_ALPHABET
                    .iter()
                    .position(|a| *a == replacement)
                    .unwrap_or(0);
                OTP_ALPHABET[(i + 1) % OTP_ALPHABET.len()]
            } else {
                replacement
            };
        }
        String::from_utf8(letters).unwrap_or_default()
    }
}

/// A serial number in a make's format, drawn with `fake` from the console's stream.
fn serial(rng: &mut ChaCha8Rng, format: &str) -> String {
    let digits: String = NumberWithFormat(EN, &format.replace('@', "%")).fake_with_rng(rng);
    const ALNUM: &[u8] = b"ABCDEFGHJKLMNPRSTUVWXYZ0123456789";
    digits
        .chars()
        .map(|c| {
            if c == '%' {
                char::from(ALNUM[rng.random_range(0..ALNUM.len())])
            } else {
                c
            }
        })
        .collect()
}

/// Whether the admins reject the console with this serial, and why: decided by the seed and
/// the serial, so every admin and every run with the seed agree.
pub fn admin_verdict(seed: u64, serial: &str, reject: Rate) -> Option<RejectReason> {
    let mut rng = verdict_rng(seed, serial);
    (rng.random::<f64>() < reject.get()).then(|| reason(&mut rng))
}

/// Why the admins reject the console with this serial when they do (what `admin_verdict`
/// answers for it, whatever the reject share).
pub fn reject_reason(seed: u64, serial: &str) -> RejectReason {
    let mut rng = verdict_rng(seed, serial);
    let _share_draw: f64 = rng.random();
    reason(&mut rng)
}

fn verdict_rng(seed: u64, serial: &str) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0AD3_1A00_0000_0000);
    rng.set_stream(fnv1a(serial));
    rng
}

/// Weighted: most rejections are devices the admin does not recognise.
fn reason(rng: &mut ChaCha8Rng) -> RejectReason {
    match rng.random_range(0..100) {
        0..40 => RejectReason::UnrecognizedDevice,
        40..65 => RejectReason::WrongRoom,
        65..80 => RejectReason::DuplicateRequest,
        80..90 => RejectReason::SecurityConcern,
        _ => RejectReason::Other,
    }
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_and_index_give_the_same_console() {
        let cfg = FleetConfig::default();
        for i in [0, 1, 999] {
            assert_eq!(ConsoleProfile::draw(&cfg, i), ConsoleProfile::draw(&cfg, i));
        }
        let other = FleetConfig {
            seed: 2,
            ..FleetConfig::default()
        };
        let differs = (0..50).filter(|i| {
            ConsoleProfile::draw(&cfg, *i).serial != ConsoleProfile::draw(&other, *i).serial
        });
        assert!(differs.count() > 45);
    }

    #[test]
    fn serials_look_like_their_make() {
        let cfg = FleetConfig::default();
        for i in 0..200 {
            let p = ConsoleProfile::draw(&cfg, i);
            assert!(
                p.serial.bytes().all(|b| b.is_ascii_alphanumeric()),
                "{}",
                p.serial
            );
            if p.model.make == "Logitech" {
                assert_eq!(&p.serial[4..6], "LZ", "{}", p.serial);
            }
            assert!(!p.serial.contains('#') && !p.serial.contains('%'));
        }
    }

    #[test]
    fn typos_change_the_otp_and_the_last_attempt_is_right() {
        let cfg = FleetConfig {
            rates: crate::config::Rates {
                typo: Rate::known(1.0),
                ..Default::default()
            },
            ..FleetConfig::default()
        };
        let p = ConsoleProfile::draw(&cfg, 3);
        assert_eq!(p.typos, MAX_TYPOS);
        let otp = "BCDF-GHJK-LMNP-QRST";
        for a in 0..p.typos {
            assert_ne!(p.typed_otp(otp, a), otp.replace('-', ""));
        }
        assert_eq!(p.typed_otp(otp, p.typos), otp);
    }
}
