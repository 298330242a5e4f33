//! Bearer tokens: admin tokens are kept only as SHA-256 hashes and compared in constant time.

use crate::tokens::{StoredToken, hash};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use subtle::ConstantTimeEq;

/// The admin tokens this server accepts, hashed.
#[derive(Clone, Default)]
pub struct AdminTokens {
    hashes: Vec<[u8; 32]>,
}

impl std::fmt::Debug for AdminTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AdminTokens({} hashed)", self.hashes.len())
    }
}

impl AdminTokens {
    /// Accepts exactly these tokens (whitespace around them ignored).
    pub fn new<'a>(tokens: impl IntoIterator<Item = &'a str>) -> AdminTokens {
        AdminTokens {
            hashes: tokens.into_iter().map(hash).collect(),
        }
    }

    /// Accepts the tokens a data directory holds.
    pub fn from_stored(stored: &[StoredToken]) -> AdminTokens {
        AdminTokens {
            hashes: stored.iter().map(|t| t.hash).collect(),
        }
    }

    /// Accepts `token` too.
    pub fn add(&mut self, token: &str) {
        self.hashes.push(hash(token));
    }

    /// How many tokens are accepted.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Whether `presented` is one of the tokens. Every stored hash is compared, in constant
    /// time, so timing tells nothing about which or how many.
    pub fn accepts(&self, presented: &str) -> bool {
        let h = hash(presented);
        self.hashes
            .iter()
            .fold(subtle::Choice::from(0), |acc, stored| {
                acc | stored.ct_eq(&h)
            })
            .into()
    }
}

/// A fresh admin token: 256 bits from the CSPRNG, URL-safe.
pub fn new_admin_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes);
    format!("otpf_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer(header: Option<&http::HeaderValue>) -> Option<&str> {
    let value = header?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_its_tokens() {
        let t = new_admin_token();
        let tokens = AdminTokens::new([t.as_str()]);
        assert!(tokens.accepts(&t));
        assert!(!tokens.accepts(&new_admin_token()));
        assert!(!tokens.accepts(""));
        assert!(!AdminTokens::default().accepts(&t));
    }

    #[test]
    fn reads_bearer_headers() {
        let h = http::HeaderValue::from_static("Bearer abc");
        assert_eq!(bearer(Some(&h)), Some("abc"));
        let h = http::HeaderValue::from_static("bearer  abc ");
        assert_eq!(bearer(Some(&h)), Some("abc"));
        let h = http::HeaderValue::from_static("Basic abc");
        assert_eq!(bearer(Some(&h)), None);
        assert_eq!(bearer(None), None);
    }
}
