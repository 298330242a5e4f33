//! The OTP format: 16 characters from 20 unambiguous consonants, shown as `XXXX-XXXX-XXXX-XXXX`
//! (about 69 bits), entered case-insensitively with or without separators.

use std::fmt;

/// The 20 consonants an OTP is made of: no vowels (no words), no look-alikes of digits.
pub const OTP_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters in an OTP, separators not counted.
pub const OTP_LEN: usize = 16;

/// In [`PARSE_TABLE`]: a separator (dash or space), skipped.
const SKIP: u8 = 1;

/// Byte -> upper-case alphabet letter (either case accepted), [`SKIP`], or 0 (not allowed).
const PARSE_TABLE: [u8; 256] = {
    let mut table = [0u8; 256];
    table[b'-' as usize] = SKIP;
    table[b' ' as usize] = SKIP;
    let mut i = 0;
    while i < OTP_ALPHABET.len() {
        let upper = OTP_ALPHABET[i];
        table[upper as usize] = upper;
        table[upper.to_ascii_lowercase() as usize] = upper;
        i += 1;
    }
    table
};

/// A well-formed OTP in canonical form (16 upper-case letters, no separators).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OtpCode([u8; OTP_LEN]);

/// Why a typed OTP is not well formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OtpParseError {
    /// Not 16 letters once separators are removed.
    WrongLength(usize),
    /// A character outside the alphabet (vowels, digits, symbols).
    BadCharacter(char),
}

impl fmt::Display for OtpParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OtpParseError::WrongLength(n) => write!(
                f,
                "an OTP has {OTP_LEN} letters (dashes and spaces optional), this one has {n}"
            ),
            OtpParseError::BadCharacter(c) => write!(
                f,
                "an OTP contains only the consonants {}, not {c:?}",
                String::from_utf8_lossy(OTP_ALPHABET)
            ),
        }
    }
}

impl std::error::Error for OtpParseError {}

impl OtpCode {
    /// Parses what an installer typed: case-insensitive, dashes and spaces ignored.
    ///
    /// One table look-up per byte (this is on every redemption): the table maps each byte to
    /// its upper-case letter, to `SKIP` for a separator, or to 0 for anything else.
    pub fn parse(typed: &str) -> Result<OtpCode, OtpParseError> {
        let mut code = [0u8; OTP_LEN];
        let mut len = 0usize;
        for (at, &byte) in typed.as_bytes().iter().enumerate() {
            match PARSE_TABLE[usize::from(byte)] {
                SKIP => {}
                0 => {
                    // Every byte before this one was ASCII, so `at` starts a character.
                    let c = typed[at..].chars().next().unwrap_or('?');
                    return Err(OtpParseError::BadCharacter(c));
                }
                letter => {
                    if len < OTP_LEN {
                        code[len] = letter;
                    }
                    len += 1;
                }
            }
        }
        if len != OTP_LEN {
            return Err(OtpParseError::WrongLength(len));
        }
        Ok(OtpCode(code))
    }

    /// Builds a code from 16 alphabet indices (each below 20), as a generator draws them.
    pub fn from_indices(indices: [u8; OTP_LEN]) -> OtpCode {
        OtpCode(indices.map(|i| OTP_ALPHABET[usize::from(i) % OTP_ALPHABET.len()]))
    }

    /// The canonical bytes (16 upper-case letters), the input of the server's keyed hash.
    pub fn as_bytes(&self) -> &[u8; OTP_LEN] {
        &self.0
    }

    /// The code as shown to people: `XXXX-XXXX-XXXX-XXXX`.
    pub fn display(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, chunk) in self.0.chunks(4).enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            // The bytes are always alphabet letters, hence ASCII.
            f.write_str(std::str::from_utf8(chunk).map_err(|_| fmt::Error)?)?;
        }
        Ok(())
    }
}

/// Debug never prints the code: OTPs are secrets and end up in logs otherwise.
impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode(****)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_display_form_lower_case_and_bare() {
        let code = OtpCode::from_indices([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
        assert_eq!(code.to_string(), "BCDF-GHJK-LMNP-QRST");
        assert_eq!(OtpCode::parse("BCDF-GHJK-LMNP-QRST"), Ok(code.clone()));
        assert_eq!(OtpCode::parse("bcdfghjklmnpqrst"), Ok(code.clone()));
        assert_eq!(OtpCode::parse(" bcdf ghjk-lmnp qrst "), Ok(code));
    }

    #[test]
    fn refuses_wrong_length_and_characters() {
        assert_eq!(
            OtpCode::parse("BCDF-GHJK"),
            Err(OtpParseError::WrongLength(8))
        );
        assert_eq!(
            OtpCode::parse("BCDF-GHJK-LMNP-QRSTV"),
            Err(OtpParseError::WrongLength(17))
        );
        assert_eq!(
            OtpCode::parse("ACDF-GHJK-LMNP-QRST"),
            Err(OtpParseError::BadCharacter('A'))
        );
        assert_eq!(
            OtpCode::parse("BCDF-GHJK-LMNP-QRS1"),
            Err(OtpParseError::BadCharacter('1'))
        );
        assert_eq!(
            OtpCode::parse("BCDF-GHJK-LMNP-QRSé"),
            Err(OtpParseError::BadCharacter('é'))
        );
    }

    /// The parser before the table: one `char` at a time against the alphabet.
    fn reference(typed: &str) -> Result<OtpCode, OtpParseError> {
        let mut code = [0u8; OTP_LEN];
        let mut len = 0usize;
        for c in typed.chars() {
            if c == '-' || c == ' ' {
                continue;
            }
            let upper = c.to_ascii_uppercase();
            if !upper.is_ascii() || !OTP_ALPHABET.contains(&(upper as u8)) {
                return Err(OtpParseError::BadCharacter(c));
            }
            if len < OTP_LEN {
                code[len] = upper as u8;
            }
            len += 1;
        }
        if len != OTP_LEN {
            return Err(OtpParseError::WrongLength(len));
        }
        Ok(OtpCode(code))
    }

    #[test]
    fn the_table_parser_agrees_with_the_character_parser() {
        let valid = "BCDF-GHJK-LMNP-QRST";
        let mut checked = 0;
        for c in (0u32..0x3000).filter_map(char::from_u32) {
            for at in [0, 4, 7, valid.len()] {
                let mut typed = valid.to_owned();
                typed.insert(at, c);
                assert_eq!(OtpCode::parse(&typed), reference(&typed), "{typed:?}");
                let replaced: String = typed.chars().skip(1).collect();
                assert_eq!(
                    OtpCode::parse(&replaced),
                    reference(&replaced),
                    "{replaced:?}"
                );
                checked += 2;
            }
        }
        assert!(checked > 40_000);
    }

    #[test]
    fn debug_hides_the_code() {
        let code = OtpCode::from_indices([3; OTP_LEN]);
        assert!(!format!("{code:?}").contains('F'));
    }
}
