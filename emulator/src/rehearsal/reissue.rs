//! Re-issue and return: after a room's OTP expires, or its request is rejected for something a
//! return visit fixes, the admins regenerate its OTP (the server's regenerate: the old OTP stops
//! working and a request made with it is withdrawn) on the plan's policy, and the installer
//! comes back on a later working day at the site, up to the plan's attempts. Every room then
//! ends signed in or with a reason in words.

use super::plan::{CompiledPlan, CompiledWave, Reissue, ReissuePolicy};
use super::{Outcomes, Stage, wave_config, wave_profile};
use crate::config::FleetConfig;
use crate::console::ConsoleRecord;
use crate::profile::{ConsoleProfile, console_rng, reject_reason};
use crate::schedule::WorkSchedule;
use crate::seed::issue_tickets;
use crate::tally::Gauge;
use jiff::civil::{Date, Time};
use otpfleet_protocol::RejectReason;
use otpfleet_reports::Outcome;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// When a room's next OTP is generated and its installer comes to type it, ms from the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Return {
    /// When an admin regenerates it.
    pub regenerate_at_ms: u64,
    /// The admin's time on it.
    pub regenerate_ms: u64,
    /// When the installer is at the console with it.
    pub arrival_ms: u64,
    /// The installer was still on site and waited for it: no second trip.
    pub same_visit: bool,
}

/// A room given another OTP: OTPs so far, visits before its console's latest, how its first
/// OTP ended, and whether the latest console is on the same visit as the one before.
#[derive(Debug, Clone, Copy)]
struct Room {
    otps: u32,
    visits: u32,
    first: Outcome,
    same_visit: bool,
}

/// A wave's OTPs that expired, by cause, over every visit (a room re-issued counts each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expiries {
    /// The request expired while it waited for approval.
    pub awaiting_approval: u64,
    /// The installer typed the OTP after it expired.
    pub installer_late: u64,
}

/// A room waiting for its next OTP: its console, when its installer returns, the admin's time
/// on it and its attempt. Small: a million of them wait in a few tens of MB.
#[derive(Debug, Clone, Copy)]
struct Pending {
    index: u64,
    arrival_ms: u64,
    regenerate_ms: u64,
    otps: u32,
}

/// The rooms waiting for their next OTP, by when it is generated (ms from the start): the
/// rooms due at one moment (a return day's batch, the admins' morning) get theirs in one batch,
/// as an admin regenerates a selection in the portal.
#[derive(Debug, Default)]
pub(super) struct Due {
    by_time: parking_lot::Mutex<BTreeMap<u64, Vec<Pending>>>,
    added: tokio::sync::Notify,
}

/// What the collector needs to decide a room's next step: the plan, the stage, the approvers'
/// hours, the rooms re-issued so far, and the desk of rooms due another OTP.
pub(super) struct Returns<'p> {
    pub(super) plan: &'p CompiledPlan,
    seed: u64,
    pub(super) stage: Stage,
    /// The approvers' hours, for `at_once`.
    approvers: Vec<WorkSchedule>,
    rooms: HashMap<u64, Room>,
    due: &'p Due,
    /// Per wave, in the plan's order.
    pub(super) expiries: Vec<Expiries>,
}

impl<'p> Returns<'p> {
    pub(super) fn new(plan: &'p CompiledPlan, seed: u64, stage: &Stage, due: &'p Due) -> Self {
        // A group of none is never at work.
        let approvers = (plan.admins.iter().filter(|a| a.count > 0))
            .map(|a| a.schedule(plan.start_ms, stage.origin))
            .collect();
        Returns {
            plan,
            seed,
            stage: stage.clone(),
            approvers,
            rooms: HashMap::new(),
            due,
            expiries: vec![Expiries::default(); plan.waves.len()],
        }
    }

    /// A console ended at `now_ms`: answers its room's final record (its OTPs, visits and why
    /// in words), or sends the installer back with a new OTP and answers none.
    pub(super) fn after(
        &mut self,
        mut record: ConsoleRecord,
        now_ms: u64,
    ) -> Option<ConsoleRecord> {
        let mut room = self.rooms.get(&record.index).copied().unwrap_or(Room {
            otps: 1,
            visits: 0,
            first: record.outcome,
            same_visit: false,
        });
        if !room.same_visit {
            room.visits += record.visits;
        }
        if record.otps == 0 {
            // The desk never made this visit's OTP (the rehearsal stopped, or the server
            // refused): the room had one fewer.
            room.otps = room.otps.saturating_sub(1).max(1);
        }
        let at = self.plan.wave_of(record.index);
        if let (Some(at), Outcome::Expired) = (at, record.outcome) {
            let e = &mut self.expiries[at];
            match record.expired_awaiting_approval {
                true => e.awaiting_approval += 1,
                false => e.installer_late += 1,
            }
        }
        let wave = at.map(|at| &self.plan.waves[at]);
        let again = match (self.why_done(&record, room), wave) {
            (Ok(()), Some(wave)) => self.next_visit(wave, &record, now_ms, room.otps),
            (Err(why), _) => Err(why),
            (Ok(()), None) => Err("it belongs to no wave".to_owned()),
        };
        match again {
            Ok(ret) => {
                self.send_back(&record, ret, room);
                None
            }
            Err(why) => {
                record.otps = room.otps;
                record.visits = room.visits;
                record.first_outcome = (room.otps > 1).then_some(room.first);
                record.ended_because = Some(why);
                Some(record)
            }
        }
    }

    /// Why the room is done (in words), or `Ok` when it may get another OTP.
    fn why_done(&self, record: &ConsoleRecord, room: Room) -> Result<(), String> {
        let seed = self.seed;
        let done = match record.outcome {
            Outcome::SignedInOtp => "signed in with its OTP".to_owned(),
            Outcome::SignedInManual => "signed in by manual setup".to_owned(),
            Outcome::VerificationFailed => {
                "uncertified model (contact the manufacturer)".to_owned()
            }
            Outcome::Rejected => match reject_reason(seed, &record.serial) {
                r @ (RejectReason::UnrecognizedDevice | RejectReason::SecurityConcern) => {
                    format!("rejected for good ({r})")
                }
                _ => return self.may_retry(record, room),
            },
            Outcome::Expired => return self.may_retry(record, room),
            Outcome::Abandoned | Outcome::Dropped | Outcome::NotStarted => record
                .note
                .clone()
                .unwrap_or_else(|| record.outcome.as_str().to_owned()),
        };
        Err(done)
    }

    /// A room whose OTP expired or whose rejection a visit fixes: `Ok` if the plan re-issues
    /// and it has attempts left.
    fn may_retry(&self, record: &ConsoleRecord, room: Room) -> Result<(), String> {
        let what = match record.outcome {
            Outcome::Rejected => format!("rejected ({})", reject_reason(self.seed, &record.serial)),
            _ if record.expired_awaiting_approval => "expired awaiting approval".to_owned(),
            _ => "expired before the installer typed it".to_owned(),
        };
        match self.plan.reissue {
            None => Err(format!("OTP {what}, none re-issued")),
            Some(r) if room.otps >= r.attempts => Err(format!(
                "out of attempts ({} OTPs), the last {what}",
                r.attempts
            )),
            Some(_) if self.stage.requester.stop.is_stopped() => {
                Err(format!("OTP {what} as the rehearsal ended"))
            }
            Some(_) => Ok(()),
        }
    }

    /// When the room's next OTP is generated and its installer returns, or why there is none.
    fn next_visit(
        &self,
        wave: &CompiledWave,
        record: &ConsoleRecord,
        now_ms: u64,
        otps: u32,
    ) -> Result<Return, String> {
        let Some(r) = self.plan.reissue else {
            return Err("the plan re-issues no OTP".into());
        };
        let mut rng = console_rng(self.seed ^ 0x2E15_50E0 ^ u64::from(otps), record.index);
        let on_site = record.outcome == Outcome::Expired && record.late;
        match plan_return(
            self.plan,
            wave,
            &r,
            (now_ms, on_site),
            |ms| self.until_approvers_work(ms),
            &mut rng,
        ) {
            Some(ret) if ret.arrival_ms < self.plan.horizon_ms => Ok(ret),
            _ => Err(format!(
                "return visit after the rehearsal's {} days",
                self.plan.horizon_ms / 86_400_000
            )),
        }
    }

    /// Milliseconds from `ms` until an approver is at work (0 with none: auto approval).
    fn until_approvers_work(&self, ms: u64) -> u64 {
        let at = self.stage.origin + Duration::from_millis(ms);
        self.approvers
            .iter()
            .map(|s| s.ms_until_working(at))
            .min()
            .unwrap_or(0)
    }

    /// Puts the room on the desk for its next OTP at `ret`'s moment; its installer comes back
    /// with it, and the console's record comes to the collector as every other.
    fn send_back(&mut self, record: &ConsoleRecord, ret: Return, room: Room) {
        let requester = &self.stage.requester;
        if record.outcome == Outcome::Expired {
            // The room is no longer expired: it has a new OTP coming.
            requester.tally.down(Gauge::Expired);
        }
        if record.outcome == Outcome::Rejected {
            self.stage.fixed.insert(&record.serial);
        }
        self.rooms.insert(
            record.index,
            Room {
                otps: room.otps + 1,
                visits: room.visits,
                first: room.first,
                same_visit: ret.same_visit,
            },
        );
        let pending = Pending {
            index: record.index,
            arrival_ms: ret.arrival_ms,
            regenerate_ms: ret.regenerate_ms,
            otps: room.otps,
        };
        let mut due = self.due.by_time.lock();
        due.entry(ret.regenerate_at_ms).or_default().push(pending);
        drop(due);
        self.due.added.notify_one();
    }
}

/// What the regeneration desk needs: the plan and its fleet settings (to draw a room's console
/// again), the stage, the validity in force, the account ids by console index, and where
/// consoles send their records.
pub(super) struct Regenerator<'p> {
    pub plan: &'p CompiledPlan,
    pub cfg: &'p FleetConfig,
    pub stage: Stage,
    pub validity_now: Arc<AtomicU32>,
    pub accounts: Vec<String>,
    pub tx: Outcomes,
}

impl Regenerator<'_> {
    /// Generates each moment's due OTPs in one batch at that moment and launches their
    /// consoles, until `rooms_done`; when the rehearsal stops first, every room still waiting
    /// ends with a record saying so.
    pub(super) async fn run(&self, due: &Due, rooms_done: &CancellationToken) {
        let stage = &self.stage;
        loop {
            let next = due.by_time.lock().keys().next().copied();
            let at = next.map(|ms| stage.origin + Duration::from_millis(ms));
            tokio::select! {
                biased;
                () = async { tokio::time::sleep_until(at.unwrap_or_else(tokio::time::Instant::now)).await }, if at.is_some() => {}
                () = due.added.notified() => continue,
                () = stage.requester.stop.stopped() => break,
                () = rooms_done.cancelled() => return,
            }
            let now_ms = u64::try_from(stage.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
            let batch: Vec<Pending> = {
                let mut by_time = due.by_time.lock();
                let later = by_time.split_off(&(now_ms + 1));
                std::mem::replace(&mut *by_time, later)
                    .into_values()
                    .flatten()
                    .collect()
            };
            self.regenerate(batch).await;
        }
        let left = std::mem::take(&mut *due.by_time.lock());
        for p in left.into_values().flatten() {
            let profile = self.profile(&p);
            let why = "the rehearsal ended before its OTP was regenerated";
            let _ = self.tx.send(never_made(&profile, why));
        }
    }

    /// The room's console for its next visit: drawn as at first, arriving at the return.
    fn profile(&self, p: &Pending) -> ConsoleProfile {
        let plan = self.plan;
        let at = plan.wave_of(p.index).unwrap_or(0);
        let wave = &plan.waves[at];
        let mut profile = wave_profile(
            plan,
            wave,
            &wave_config(self.cfg, wave),
            p.index - wave.first_index,
        );
        profile.arrival_ms = p.arrival_ms;
        // Another visit: another draw of how the installer gets on.
        profile.flow_seed ^= u64::from(p.otps).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        profile
    }

    /// Regenerates the OTPs of `batch` now (the admins' time counted) and launches their
    /// consoles at their returns.
    async fn regenerate(&self, mut batch: Vec<Pending>) {
        let stage = &self.stage;
        let requester = &stage.requester;
        batch.sort_by_key(|p| (p.arrival_ms, p.index));
        let profiles: Vec<ConsoleProfile> = batch.iter().map(|p| self.profile(p)).collect();
        let ids: Vec<String> = batch
            .iter()
            .map(|p| {
                self.accounts
                    .get(p.index as usize)
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        let validity = self.validity_now.load(Ordering::SeqCst);
        let issued = issue_tickets(
            requester,
            &stage.transport,
            &stage.token,
            &profiles,
            &ids,
            validity,
        )
        .await;
        for p in &batch {
            requester.tally.regeneration_time(p.regenerate_ms);
        }
        match issued {
            Ok(tickets) => {
                requester.tally.otps_issued(tickets.len() as u64);
                let (stage, tx) = (stage.clone(), self.tx.clone());
                tokio::spawn(async move {
                    let transport = &stage.transport;
                    crate::fleet::launch(
                        &stage.requester,
                        transport,
                        profiles,
                        tickets,
                        stage.origin,
                        tx,
                    )
                    .await;
                });
            }
            Err(e) => {
                if !requester.stop.is_stopped() {
                    requester.tally.error(format!("regenerating OTPs: {e}"));
                }
                let why = match requester.stop.is_stopped() {
                    true => "the rehearsal ended before its OTP was regenerated".to_owned(),
                    false => format!("regenerating its OTP failed: {e}"),
                };
                for p in &profiles {
                    let _ = self.tx.send(never_made(p, &why));
                }
            }
        }
    }
}

/// The record of a visit whose OTP was never made (`otps` 0 tells the collector so).
fn never_made(p: &ConsoleProfile, why: &str) -> ConsoleRecord {
    ConsoleRecord {
        otps: 0,
        ..ConsoleRecord::never_started(p, why)
    }
}

/// When a room whose console ended at `failed_ms` (`on_site`: its installer is still there,
/// holding an expired OTP) gets its next OTP and its installer, by `r`'s policy; `until_admins`
/// answers how long from a moment until an approver is at work. None if the site's calendar
/// cannot place the return.
pub fn plan_return(
    plan: &CompiledPlan,
    wave: &CompiledWave,
    r: &Reissue,
    (failed_ms, on_site): (u64, bool),
    until_admins: impl Fn(u64) -> u64,
    rng: &mut ChaCha8Rng,
) -> Option<Return> {
    let took = rng.random_range(r.regenerate_ms.min_ms()..=r.regenerate_ms.max_ms());
    let admins_at = failed_ms + until_admins(failed_ms);
    let site = Site { plan, wave };
    if r.policy == ReissuePolicy::AtOnce && on_site && admins_at == failed_ms {
        // The installer calls the admins, who regenerate it while the installer waits.
        let arrival_ms = failed_ms + took + 60_000;
        if site.installers_at_work(arrival_ms) {
            return Some(Return {
                regenerate_at_ms: failed_ms,
                regenerate_ms: took,
                arrival_ms,
                same_visit: true,
            });
        }
    }
    let days = rng.random_range(r.revisit_days.0..=r.revisit_days.1);
    let date = site.working_day_after(failed_ms, days)?;
    let (open, close) = wave.installer_hours;
    let open_ms = site.ms_at(date, open)?;
    let slot =
        open_ms + rng.random_range(0..site.ms_at(date, close)?.saturating_sub(open_ms).max(1));
    let regenerate_at_ms = match r.policy {
        ReissuePolicy::AtOnce => admins_at,
        ReissuePolicy::NextBatch => site
            .ms_at(date, wave.daily_batch.unwrap_or(open))?
            .max(failed_ms),
    };
    Some(Return {
        regenerate_at_ms,
        regenerate_ms: took,
        arrival_ms: slot.max(regenerate_at_ms + took),
        same_visit: false,
    })
}

/// A wave's site on the plan's clock.
struct Site<'p> {
    plan: &'p CompiledPlan,
    wave: &'p CompiledWave,
}

impl Site<'_> {
    fn zoned(&self, ms: u64) -> Option<jiff::Zoned> {
        let at = self.plan.start_ms.checked_add(i64::try_from(ms).ok()?)?;
        Some(
            jiff::Timestamp::from_millisecond(at)
                .ok()?
                .to_zoned(self.wave.tz.clone()),
        )
    }

    /// `time` on `date` at the site, ms from the plan's start.
    fn ms_at(&self, date: Date, time: Time) -> Option<u64> {
        let z = date.to_datetime(time).to_zoned(self.wave.tz.clone()).ok()?;
        u64::try_from(z.timestamp().as_millisecond() - self.plan.start_ms).ok()
    }

    /// Whether installers are at work at the site at `ms`.
    fn installers_at_work(&self, ms: u64) -> bool {
        let Some(z) = self.zoned(ms) else {
            return false;
        };
        let (open, close) = self.wave.installer_hours;
        self.wave.calendar.works(z.date()) && z.time() >= open && z.time() < close
    }

    /// The `days`th installation day at the site after the date of `ms`.
    fn working_day_after(&self, ms: u64, days: u32) -> Option<Date> {
        let mut d = self.zoned(ms)?.date();
        let mut left = days.max(1);
        // Bounded: a year of days off in a row is a calendar nobody installs by.
        for _ in 0..366 {
            d = d.tomorrow().ok()?;
            if self.wave.calendar.works(d) {
                left -= 1;
                if left == 0 {
                    return Some(d);
                }
            }
        }
        None
    }
}
