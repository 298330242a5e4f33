//! `redeem`: consoles at first boot: verify, redeem a pre-issued OTP, poll until approved, sign
//! in. Each iteration is one console with its own OTP, issued before the attack and handed out
//! once, so a used or expired OTP is a bug in the scenario, never load.
//!
//! Consoles poll at the `interval_s` the server gives and no faster, as the contract asks
//! (RFC 8628): the polling rule is part of what is measured, so it is kept rather than
//! relaxed, and an iteration lasts at least one interval (1 s on the embedded server). More
//! load means more users, as more consoles in a rollout. The harness's approver approves each
//! request as soon as it is listed (see `background.rs`), so the consoles measure their own
//! path; its requests load the server but are not in goose's metrics.

use crate::common::{Harness, console};
use goose::prelude::*;
use std::sync::Arc;

/// The scenario's machine name (goose's `--scenarios` selects it by this).
pub const NAME: &str = "redeem";
/// Goose users when `--users` is not given.
pub const DEFAULT_USERS: usize = 64;

pub fn scenario(h: &Arc<Harness>) -> Scenario {
    console::transactions(h)
        .into_iter()
        .fold(Scenario::new(NAME), Scenario::register_transaction)
}
