//! `issue`: admins generating OTP batches through the wizard as fast as the server lets them:
//! review (the dry run, which refuses the pool's accounts that are not ready), generate what
//! the review allowed, export the batch as CSV for the installers. `batch_size` accounts per
//! batch, walking a pool of accounts that are never redeemed (generating again replaces an
//! account's OTP, as re-running the wizard does).

use crate::common::{Harness, admin};
use goose::prelude::*;
use std::sync::Arc;

/// The scenario's machine name (goose's `--scenarios` selects it by this).
pub const NAME: &str = "issue";
/// Goose users when `--users` is not given.
pub const DEFAULT_USERS: usize = 4;

pub fn scenario(h: &Arc<Harness>) -> Scenario {
    admin::issue_transactions(h)
        .into_iter()
        .fold(Scenario::new(NAME), Scenario::register_transaction)
}
