//! Bearer tokens: admin tokens are kept only as SHA-256 hashes and compared in constant time.

pub use crate::tokens::new_admin_token;
use crate::tokens::{StoredToken, hash};
use subtle::{ConditionallySelectable as _, ConstantTimeEq as _};

/// The admin tokens this server accepts, hashed, each with the name the audit log gives it.
#[derive(Clone, Default)]
pub struct AdminTokens {
    tokens: Vec<([u8; 32], String)>,
}

impl std::fmt::Debug for AdminTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AdminTokens({} hashed)", self.tokens.len())
    }
}

impl AdminTokens {
    /// Accepts exactly these tokens (whitespace around them ignored), named `token-file`.
    pub fn new<'a>(tokens: impl IntoIterator<Item = &'a str>) -> AdminTokens {
        let mut out = AdminTokens::default();
        for t in tokens {
            out.add(t, "token-file");
        }
        out
    }

    /// Accepts the tokens a data directory holds, named by their ids (`tok_<n>`).
    pub fn from_stored(stored: &[StoredToken]) -> AdminTokens {
        AdminTokens {
            tokens: stored.iter().map(|t| (t.hash, t.label())).collect(),
        }
    }

    /// Accepts `token` too, named `name` in the audit log.
    pub fn add(&mut self, token: &str, name: &str) {
        self.tokens.push((hash(token), name.to_owned()));
    }

    /// How many tokens are accepted.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The name of the token `presented` is, if it is one. Every stored hash is compared and
    /// the match picked without a branch, so timing tells nothing about which or how many.
    pub fn accepts(&self, presented: &str) -> Option<&str> {
        let h = hash(presented);
        let mut found = subtle::Choice::from(0);
        let mut index = 0u64;
        for (i, (stored, _)) in self.tokens.iter().enumerate() {
            let same = stored.ct_eq(&h);
            index = u64::conditional_select(&index, &(i as u64), same);
            found |= same;
        }
        bool::from(found).then(|| self.tokens[index as usize].1.as_str())
    }
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
        let other = new_admin_token();
        let mut tokens = AdminTokens::new([t.as_str()]);
        tokens.add(&other, "tok_7");
        assert_eq!(tokens.accepts(&t), Some("token-file"));
        assert_eq!(tokens.accepts(&other), Some("tok_7"));
        assert_eq!(tokens.accepts(&new_admin_token()), None);
        assert_eq!(tokens.accepts(""), None);
        assert_eq!(AdminTokens::default().accepts(&t), None);
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
