//! Opaque identifiers on the wire: a prefix and a number (`acc_12`, `bat_3`, `req_40`).

use super::ApiError;
use otpfleet_protocol::ErrorCode;

/// The kinds of identifier, with their prefixes and the error for an unknown one.
#[derive(Debug, Clone, Copy)]
pub enum IdKind {
    Account,
    Batch,
    Request,
}

impl IdKind {
    fn prefix(self) -> &'static str {
        match self {
            IdKind::Account => "acc_",
            IdKind::Batch => "bat_",
            IdKind::Request => "req_",
        }
    }

    pub fn not_found(self, id: &str) -> ApiError {
        let (code, what) = match self {
            IdKind::Account => (ErrorCode::AccountNotFound, "account"),
            IdKind::Batch => (ErrorCode::BatchNotFound, "OTP batch"),
            IdKind::Request => (ErrorCode::RequestNotFound, "request"),
        };
        let shown: String = id.chars().take(40).collect();
        ApiError::new(code, format!("there is no {what} {shown:?}"))
    }

    pub fn format(self, n: u64) -> String {
        format!("{}{n}", self.prefix())
    }

    /// The number behind an id, or `None` if the text is no id of this kind. Only the
    /// canonical form is an id (`acc_1`, never `acc_01`): one thing has one name. Inline: on
    /// every poll and hand-over, with callers in both stores.
    #[inline]
    pub fn parse(self, text: &str) -> Option<u64> {
        let digits = text.strip_prefix(self.prefix())?;
        let canonical = !digits.is_empty()
            && digits.len() <= 20
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !(digits.len() > 1 && digits.starts_with('0'));
        if !canonical {
            return None;
        }
        digits.parse().ok()
    }

    /// Like [`IdKind::parse`], answering "not found" for text that is no id.
    pub fn parse_or_not_found(self, text: &str) -> Result<u64, ApiError> {
        self.parse(text).ok_or_else(|| self.not_found(text))
    }
}

/// The ids one start of a durable server may hand out: the `n`th start numbers its requests
/// and batches after `(n - 1) * IDS_PER_START`, so an id handed out and lost in a crash (its
/// change never kept) is not handed out again for something else after the restart. A
/// trillion is more than a start takes at 200,000 a second for 50 days.
pub const IDS_PER_START: u64 = 1_000_000_000_000;

/// The number the `starts`th start of a journal numbers its ids after.
pub fn ids_after_start(starts: u64) -> u64 {
    starts.saturating_sub(1).saturating_mul(IDS_PER_START)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_kinds() {
        assert_eq!(IdKind::Account.parse(&IdKind::Account.format(42)), Some(42));
        assert_eq!(IdKind::Account.parse("req_42"), None);
        assert_eq!(IdKind::Account.parse("acc_"), None);
        assert_eq!(IdKind::Account.parse("acc_+1"), None);
        assert_eq!(IdKind::Account.parse("acc_99999999999999999999"), None);
        assert_eq!(
            IdKind::Account.parse("acc_01"),
            None,
            "only the canonical form"
        );
        assert_eq!(IdKind::Account.parse("acc_0"), Some(0));
    }

    #[test]
    fn each_start_has_its_own_range() {
        assert_eq!(ids_after_start(1), 0, "a new journal's ids start at 1");
        assert_eq!(ids_after_start(2), IDS_PER_START);
        assert_eq!(
            ids_after_start(u64::MAX),
            u64::MAX,
            "saturates, never wraps"
        );
        let id = IdKind::Request.format(ids_after_start(u64::MAX / IDS_PER_START) + 1);
        assert!(IdKind::Request.parse(&id).is_some(), "{id} parses");
    }
}
