//! `approve`: admins working the approval queue as fast as the server lets them: list the
//! oldest requests awaiting approval, take one no other admin has, approve it (or reject it
//! with a reason, `reject_rate` of them). The harness's feeder keeps about `queue_depth`
//! requests waiting by redeeming pre-issued OTPs (see `background.rs`), so the admins never
//! find the queue empty while OTPs last; its requests load the server but are not in goose's
//! metrics.

use crate::common::{Harness, admin};
use goose::prelude::*;
use std::sync::Arc;

/// The scenario's machine name (goose's `--scenarios` selects it by this).
pub const NAME: &str = "approve";
/// Goose users when `--users` is not given.
pub const DEFAULT_USERS: usize = 4;

pub fn scenario(h: &Arc<Harness>) -> Scenario {
    admin::approve_transactions(h)
        .into_iter()
        .fold(Scenario::new(NAME), Scenario::register_transaction)
}
