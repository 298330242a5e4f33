//! Keys, keyed hashes and random secrets.
//!
//! The server never keeps an OTP in plaintext: it keeps `HMAC-SHA256(otp_key, OTP)` as the lookup
//! key and compares it in constant time. Passwords are kept as an HMAC too (for manual sign-in);
//! a reference server with benchmarks on its hot path uses a keyed hash, not a slow KDF, and says
//! so in ARCHITECTURE.md. Verification tokens are stateless: the device data, the issue time and
//! a truncated MAC, so they cost no memory however many consoles verify.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use otpfleet_protocol::{OTP_ALPHABET, OTP_LEN, OtpCode};
use rand::Rng;
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The keyed hash of an OTP: the only form in which the server keeps it.
pub type OtpKey = [u8; 32];

/// Length of a poll token, in bytes (128 bits).
pub const POLL_TOKEN_BYTES: usize = 16;
const TOKEN_MAC_BYTES: usize = 16;
const TOKEN_VERSION: u8 = 1;
/// Longest verification token accepted, in characters (base64).
const MAX_TOKEN_LEN: usize = 1024;
/// Length of a generated account password.
const PASSWORD_LEN: usize = 20;
const PASSWORD_ALPHABET: &[u8] =
    b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789!#%+=?@";
/// The letters and digits of `PASSWORD_ALPHABET`: a password's first character, so that no
/// generated password starts a spreadsheet formula in the export.
const PASSWORD_FIRST: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

/// The device data a verification token vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDevice {
    pub make: String,
    pub model: String,
    pub serial: String,
    pub issued_ms: u64,
}

impl VerifiedDevice {
    /// The device as a request records it.
    pub fn into_device(self) -> otpfleet_protocol::Device {
        otpfleet_protocol::Device {
            make: self.make,
            model: self.model,
            serial: self.serial,
        }
    }
}

/// The server's keys, each derived from one secret for one purpose, and where its fresh OTPs,
/// passwords and poll tokens come from.
#[derive(Clone)]
pub struct Secrets {
    otp: HmacSha256,
    password: HmacSha256,
    token: HmacSha256,
    entropy: Entropy,
}

/// Where fresh OTPs, passwords and tokens come from: the thread's CSPRNG (ChaCha, seeded from
/// the OS), or, on a simulated disk only, one stream seeded by the simulation, so that a seed
/// replays byte for byte (`simdisk`). Never seeded in a real run.
#[derive(Debug, Clone, Default)]
pub enum Entropy {
    #[default]
    Os,
    Seeded(std::sync::Arc<parking_lot::Mutex<rand_chacha::ChaCha12Rng>>),
}

impl Entropy {
    /// A stream that repeats for the same `seed`.
    pub fn seeded(seed: u64) -> Entropy {
        let rng = <rand_chacha::ChaCha12Rng as rand::SeedableRng>::seed_from_u64(seed);
        Entropy::Seeded(std::sync::Arc::new(parking_lot::Mutex::new(rng)))
    }

    fn with<T>(&self, f: impl FnOnce(&mut dyn rand::RngCore) -> T) -> T {
        match self {
            Entropy::Os => f(&mut rand::rng()),
            Entropy::Seeded(rng) => f(&mut *rng.lock()),
        }
    }

    /// Fills `bytes` with fresh random bytes.
    pub fn fill(&self, bytes: &mut [u8]) {
        self.with(|rng| rng.fill_bytes(bytes));
    }

    /// A fresh OTP; every code is equally likely.
    pub fn otp(&self) -> OtpCode {
        let mut indices = [0u8; OTP_LEN];
        self.with(|rng| {
            for i in &mut indices {
                // `random_range` is unbiased, so every code is equally likely.
                *i = rng.random_range(0..OTP_ALPHABET.len() as u8);
            }
        });
        OtpCode::from_indices(indices)
    }

    /// A fresh account password (20 characters, about 119 bits). It never starts with a
    /// character that would make a spreadsheet read the export's cell as a formula, so the
    /// export never has to mark it (`otpfleet_protocol::export_cell`).
    pub fn password(&self) -> String {
        self.with(|rng| {
            let mut password: String = (0..PASSWORD_LEN)
                .map(|_| {
                    char::from(PASSWORD_ALPHABET[rng.random_range(0..PASSWORD_ALPHABET.len())])
                })
                .collect();
            // Rarely (3 in 64) the first character would start a formula: draw it again from
            // the letters and digits. Drawn this way the common case costs nothing extra (the
            // gated issue bench).
            if !password.as_bytes()[0].is_ascii_alphanumeric() {
                let first = char::from(PASSWORD_FIRST[rng.random_range(0..PASSWORD_FIRST.len())]);
                password.replace_range(0..1, first.encode_utf8(&mut [0; 4]));
            }
            password
        })
    }

    /// A fresh poll token.
    pub fn poll_token(&self) -> [u8; POLL_TOKEN_BYTES] {
        let mut token = [0u8; POLL_TOKEN_BYTES];
        self.fill(&mut token);
        token
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

impl Secrets {
    /// Derives the purpose keys from one 32-byte server secret.
    pub fn from_secret(secret: &[u8; 32]) -> Secrets {
        let derive = |label: &[u8]| {
            let mut mac = keyed(secret);
            mac.update(label);
            keyed(&mac.finalize().into_bytes())
        };
        Secrets {
            otp: derive(b"otpfleet otp key v1"),
            password: derive(b"otpfleet password key v1"),
            token: derive(b"otpfleet verification token key v1"),
            entropy: Entropy::Os,
        }
    }

    /// Fresh keys from the operating system's CSPRNG.
    pub fn random() -> Secrets {
        let mut secret = [0u8; 32];
        Entropy::Os.fill(&mut secret);
        Secrets::from_secret(&secret)
    }

    /// These keys, drawing fresh OTPs, passwords and tokens from `entropy`.
    pub fn with_entropy(self, entropy: Entropy) -> Secrets {
        Secrets { entropy, ..self }
    }

    /// Where fresh OTPs, passwords and poll tokens come from.
    pub fn entropy(&self) -> &Entropy {
        &self.entropy
    }

    pub fn otp_key(&self, code: &OtpCode) -> OtpKey {
        let mut mac = self.otp.clone();
        mac.update(code.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The keyed hash of a password, bound to the account (lower-case upn).
    pub fn password_hash(&self, upn_lower: &str, password: &str) -> [u8; 32] {
        let mut mac = self.password.clone();
        mac.update(&(upn_lower.len() as u64).to_be_bytes());
        mac.update(upn_lower.as_bytes());
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A verification token for a device verified at `issued_ms`.
    pub fn seal_verification(&self, device: &VerifiedDevice) -> String {
        let mut payload = Vec::with_capacity(12 + device.serial.len() + 64);
        payload.push(TOKEN_VERSION);
        payload.extend_from_slice(&device.issued_ms.to_be_bytes());
        for field in [&device.make, &device.model, &device.serial] {
            // Fields are bounded by the contract (at most 256 bytes) before they get here.
            let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
            payload.extend_from_slice(&len.to_be_bytes());
            payload.extend_from_slice(&field.as_bytes()[..usize::from(len)]);
        }
        let mut mac = self.token.clone();
        mac.update(&payload);
        payload.extend_from_slice(&mac.finalize().into_bytes()[..TOKEN_MAC_BYTES]);
        URL_SAFE_NO_PAD.encode(payload)
    }

    /// The device a token vouches for, if the token is one of ours and unaltered. Decodes into
    /// a stack buffer: this runs on every redemption.
    pub fn open_verification(&self, token: &str) -> Option<VerifiedDevice> {
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let mut buf = [0u8; MAX_TOKEN_LEN / 4 * 3];
        let len = URL_SAFE_NO_PAD.decode_slice(token, &mut buf).ok()?;
        let raw = &buf[..len];
        let (payload, tag) = raw.split_at(raw.len().checked_sub(TOKEN_MAC_BYTES)?);
        let mut mac = self.token.clone();
        mac.update(payload);
        let expected = mac.finalize().into_bytes();
        if !bool::from(expected[..TOKEN_MAC_BYTES].ct_eq(tag)) {
            return None;
        }
        let (&version, rest) = payload.split_first()?;
        if version != TOKEN_VERSION || rest.len() < 8 {
            return None;
        }
        let (issued, mut rest) = rest.split_at(8);
        let issued_ms = u64::from_be_bytes(issued.try_into().ok()?);
        let mut field = || {
            let (len, tail) = rest.split_at_checked(2)?;
            let (field, tail) =
                tail.split_at_checked(usize::from(u16::from_be_bytes([len[0], len[1]])))?;
            rest = tail;
            String::from_utf8(field.to_vec()).ok()
        };
        Some(VerifiedDevice {
            make: field()?,
            model: field()?,
            serial: field()?,
            issued_ms,
        })
    }
}

fn keyed(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length")
}

pub fn encode_poll_token(token: &[u8; POLL_TOKEN_BYTES]) -> String {
    URL_SAFE_NO_PAD.encode(token)
}

/// Whether `presented` (as sent by a console) is `expected`, in constant time. Inline, like
/// `decode_poll_token`: both are on every poll and hand-over, and with the PostgreSQL core as
/// a second caller the compiler stopped inlining them (+4% instructions per poll in the gate).
#[inline]
pub fn poll_token_matches(expected: &[u8; POLL_TOKEN_BYTES], presented: &str) -> bool {
    decode_poll_token(presented).is_some_and(|decoded| bool::from(expected.ct_eq(&decoded)))
}

/// A poll token as a console sends it, decoded (`None`: not one this server could have made).
#[inline]
pub fn decode_poll_token(presented: &str) -> Option<[u8; POLL_TOKEN_BYTES]> {
    let mut decoded = [0u8; POLL_TOKEN_BYTES];
    match URL_SAFE_NO_PAD.decode_slice(presented.as_bytes(), &mut decoded) {
        Ok(POLL_TOKEN_BYTES) => Some(decoded),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_never_start_a_spreadsheet_formula() {
        let alnum: Vec<u8> = PASSWORD_ALPHABET
            .iter()
            .copied()
            .filter(u8::is_ascii_alphanumeric)
            .collect();
        assert_eq!(PASSWORD_FIRST, alnum.as_slice());
        for _ in 0..2_000 {
            let p = Entropy::Os.password();
            assert_eq!(p.len(), PASSWORD_LEN);
            assert_eq!(otpfleet_protocol::export_cell(&p), p.as_str());
        }
    }

    fn device() -> VerifiedDevice {
        VerifiedDevice {
            make: "Logitech".into(),
            model: "Tap".into(),
            serial: "2231LZ0ABC12".into(),
            issued_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn verification_tokens_round_trip_and_refuse_tampering() {
        let s = Secrets::random();
        let token = s.seal_verification(&device());
        assert_eq!(s.open_verification(&token), Some(device()));
        // Another server's token, a flipped character, a truncated token: all refused.
        assert_eq!(Secrets::random().open_verification(&token), None);
        let mut flipped = token.clone().into_bytes();
        flipped[5] = if flipped[5] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            s.open_verification(&String::from_utf8(flipped).unwrap_or_default()),
            None
        );
        assert_eq!(s.open_verification(&token[..token.len() - 3]), None);
        assert_eq!(s.open_verification(""), None);
    }

    #[test]
    fn long_fields_survive_the_round_trip() {
        let s = Secrets::random();
        let long = VerifiedDevice {
            make: "é".repeat(128),
            ..device()
        };
        assert_eq!(s.open_verification(&s.seal_verification(&long)), Some(long));
        // The longest fields the contract lets through (256, 256 and 64 bytes).
        let longest = VerifiedDevice {
            make: "m".repeat(256),
            model: "é".repeat(128),
            serial: "s".repeat(64),
            ..device()
        };
        let token = s.seal_verification(&longest);
        assert!(token.len() <= MAX_TOKEN_LEN, "{}", token.len());
        assert_eq!(s.open_verification(&token), Some(longest));
        assert_eq!(s.open_verification(&"A".repeat(MAX_TOKEN_LEN + 4)), None);
    }

    #[test]
    fn otp_keys_depend_on_code_and_secret() {
        let a = Secrets::from_secret(&[1; 32]);
        let b = Secrets::from_secret(&[2; 32]);
        let code = Entropy::Os.otp();
        assert_eq!(a.otp_key(&code), a.otp_key(&code));
        assert_ne!(a.otp_key(&code), b.otp_key(&code));
        assert_ne!(a.otp_key(&code), a.otp_key(&Entropy::Os.otp()));
    }

    #[test]
    fn poll_tokens_match_only_themselves() {
        let t = Entropy::Os.poll_token();
        assert!(poll_token_matches(&t, &encode_poll_token(&t)));
        assert!(!poll_token_matches(
            &t,
            &encode_poll_token(&Entropy::Os.poll_token())
        ));
        assert!(!poll_token_matches(&t, "short"));
    }
}
