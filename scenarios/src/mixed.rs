//! `mixed` (the default): a rollout day. Consoles, approvers and wizard admins at once, as
//! goose scenarios weighted by users: 16 consoles (`redeem`) to 3 approvers (`approve`) to 1
//! wizard admin (`issue`). No feeder and no harness approver: the consoles fill the queue and
//! the approvers decide it (pausing a second when it holds nothing for them, as a person
//! refreshing the portal); the wizard admins pause a second on each page. The request mix is
//! then that of a rollout: per console, verify, redeem, polls at the server's interval and a
//! sign-in, one listing and decision, and a share of a batch.

use crate::common::Harness;
use crate::{approve, issue, redeem};
use goose::prelude::*;
use std::sync::Arc;
use std::time::Duration;

/// The scenario's name on our command line (each part keeps its own goose machine name).
pub const NAME: &str = "mixed";
/// Goose users when `--users` is not given.
pub const DEFAULT_USERS: usize = 40;
/// Users per scenario, as goose weights: consoles, approvers, wizard admins.
pub const WEIGHTS: [(&str, usize); 3] = [(redeem::NAME, 16), (approve::NAME, 3), (issue::NAME, 1)];
/// An approver's pause when the queue holds nothing it can take.
pub const APPROVER_IDLE: Duration = Duration::from_secs(1);
/// A wizard admin's pause on each page.
pub const ISSUE_THINK: Duration = Duration::from_secs(1);

pub fn scenarios(h: &Arc<Harness>) -> Result<Vec<Scenario>, GooseError> {
    let [(_, consoles), (_, approvers), (_, admins)] = WEIGHTS;
    Ok(vec![
        redeem::scenario(h).set_weight(consoles)?,
        approve::scenario(h).set_weight(approvers)?,
        issue::scenario(h).set_weight(admins)?,
    ])
}
