//! A virtual console walking the first boot: boot, verify (HDMI ingest faults, uncertified
//! models), accept the agreement, type the OTP (with typos) or set up manually, wait for
//! approval polling at `interval_s` (honouring `slow_down`), and collect its credentials once.

use crate::api::Requester;
use crate::profile::{ConsoleProfile, console_rng};

use crate::tally::{Fault, Gauge};
use otpfleet_client::{Answer, ApiRequest, CallError, Ticket, Transport, calls};
use otpfleet_protocol::{
    ErrorCode, ManualSignInRequest, PollResponse, RedeemRequest, RedeemResponse, RequestStatus,
    VerifyRequest, VerifyResponse,
};
use otpfleet_reports::{Outcome, Step};
use rand::Rng as _;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;
use tokio::time::Instant;

/// How one console ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleRecord {
    pub index: u64,
    pub serial: String,
    pub make: &'static str,
    pub model: &'static str,
    pub outcome: Outcome,
    pub typos: u32,
    pub hdmi_missing: bool,
    pub manual: bool,
    /// A late installer: the OTP was typed after it expired (whatever made the installer late:
    /// `--late-rate`, or a wave whose OTPs expired before its installers came).
    pub late: bool,
    /// When the installer arrived, ms from the run's start.
    pub arrival_ms: u64,
    /// When the schedule had it arrive, ms from the run's start.
    pub scheduled_ms: u64,
    /// When its task actually started, ms from the run's start (none if it never started).
    pub started_ms: Option<u64>,
    /// The rehearsal wave the console belongs to (none in a fleet run).
    pub wave: Option<std::sync::Arc<str>>,
    /// From arrival to signed in.
    pub time_to_signed_in_ms: Option<u64>,
    /// Why it was abandoned, if it was.
    pub note: Option<String>,
    /// With `expired`: whether the request expired awaiting approval (else the installer typed
    /// the OTP after it expired).
    pub expired_awaiting_approval: bool,
    /// OTPs generated for the room, the first included (a rehearsal re-issues them).
    pub otps: u32,
    /// Installer visits to the room (0 if the installer never came).
    pub visits: u32,
    /// How its first OTP ended, when it needed another.
    pub first_outcome: Option<Outcome>,
    /// Why it ended as it did, in words (a rehearsal's; none in a fleet run).
    pub ended_because: Option<String>,
}

impl ConsoleRecord {
    /// A console that arrived when `max_in_flight` consoles were running: never started.
    pub fn dropped(p: &ConsoleProfile, max_in_flight: u64) -> ConsoleRecord {
        ConsoleRecord {
            outcome: Outcome::Dropped,
            note: Some(format!(
                "dropped: {max_in_flight} consoles were in flight when it arrived"
            )),
            ..ConsoleRecord::never_started(p, "")
        }
    }

    /// A console that never started (its batch was never generated, or the run stopped first).
    pub fn never_started(p: &ConsoleProfile, note: &str) -> ConsoleRecord {
        ConsoleRecord {
            index: p.index,
            serial: p.serial.clone(),
            make: p.model.make,
            model: p.model.model,
            outcome: Outcome::NotStarted,
            typos: p.typos,
            hdmi_missing: p.hdmi_missing,
            manual: p.manual,
            late: false,
            arrival_ms: p.arrival_ms,
            scheduled_ms: p.arrival_ms,
            started_ms: None,
            wave: None,
            time_to_signed_in_ms: None,
            note: Some(note.to_owned()),
            expired_awaiting_approval: false,
            otps: 1,
            visits: 0,
            first_outcome: None,
            ended_because: None,
        }
    }
}

/// Most times a console waits out `too_many_attempts` before it gives up.
const MAX_THROTTLED: u32 = 10;

/// Most polls one console makes before it gives up (bounds every console in count).
const MAX_POLLS: u32 = 100_000;

struct Console<'a, T> {
    requester: &'a Requester,
    transport: T,
    profile: &'a ConsoleProfile,
    rng: ChaCha8Rng,
    arrived: Instant,
    verified: bool,
    awaiting: bool,
    redeemed: bool,
}

/// Runs one console from arrival to its outcome. A console whose code panics ends `abandoned`,
/// its note and the run's errors (`console_panicked`) saying so, instead of vanishing from the
/// run (its record never sent).
pub async fn run_console<T: Transport>(
    requester: &Requester,
    transport: T,
    p: &ConsoleProfile,
    ticket: &Ticket,
    start: Instant,
) -> ConsoleRecord {
    use futures::FutureExt as _;
    let walk = std::panic::AssertUnwindSafe(walk(requester, transport, p, ticket, start));
    match walk.catch_unwind().await {
        Ok(record) => record,
        Err(panic) => {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            requester.tally.error("console_panicked");
            ConsoleRecord {
                outcome: Outcome::Abandoned,
                ..ConsoleRecord::never_started(p, &format!("the console's code panicked: {why}"))
            }
        }
    }
}

async fn walk<T: Transport>(
    requester: &Requester,
    transport: T,
    p: &ConsoleProfile,
    ticket: &Ticket,
    start: Instant,
) -> ConsoleRecord {
    let mut arrival = start + ms(p.arrival_ms);
    if p.late {
        // The installer turns up after the OTP expired.
        arrival = arrival.max(ticket.expires_at + ms(60_000 + p.think_ms));
    }
    let mut console = Console {
        requester,
        transport,
        profile: p,
        rng: console_rng(p.flow_seed, p.index),
        arrived: arrival,
        verified: false,
        awaiting: false,
        redeemed: false,
    };
    requester.tally.up(Gauge::InVerification);
    let (outcome, note) = match console.first_boot(ticket).await {
        Ok(outcome) => (outcome, None),
        Err(note) => (Outcome::Abandoned, Some(note)),
    };
    console.leave_gauges();
    match outcome {
        Outcome::SignedInOtp | Outcome::SignedInManual => requester.tally.up(Gauge::SignedIn),
        Outcome::Expired => requester.tally.up(Gauge::Expired),
        _ => {}
    }
    // The one meaning of a late installer, in the faults, the findings and consoles.csv.
    let late = outcome == Outcome::Expired && !console.redeemed;
    if late {
        requester.tally.fault(Fault::LateInstaller);
    }
    let signed_in = matches!(outcome, Outcome::SignedInOtp | Outcome::SignedInManual);
    let time_to_signed_in_ms = signed_in.then(|| {
        let elapsed = console.arrived.elapsed();
        requester
            .recorder
            .flow(otpfleet_reports::Flow::TimeToSignedIn, elapsed);
        u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
    });
    ConsoleRecord {
        index: p.index,
        serial: p.serial.clone(),
        make: p.model.make,
        model: p.model.model,
        outcome,
        typos: p.typos,
        hdmi_missing: p.hdmi_missing,
        manual: p.manual,
        late,
        arrival_ms: u64::try_from(console.arrived.saturating_duration_since(start).as_millis())
            .unwrap_or(u64::MAX),
        scheduled_ms: p.arrival_ms,
        started_ms: None,
        wave: None,
        time_to_signed_in_ms,
        note,
        expired_awaiting_approval: outcome == Outcome::Expired && console.redeemed,
        otps: 1,
        visits: 1,
        first_outcome: None,
        ended_because: None,
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A console's flow either reaches an outcome or is abandoned with a note.
type Flow<T> = Result<T, String>;

impl<T: Transport> Console<'_, T> {
    /// Takes the console out of the gauges it is still in (it ended before leaving them).
    fn leave_gauges(&self) {
        if !self.verified {
            self.requester.tally.down(Gauge::InVerification);
        }
        if self.awaiting {
            self.requester.tally.down(Gauge::AwaitingApproval);
        }
    }

    async fn first_boot(&mut self, ticket: &Ticket) -> Flow<Outcome> {
        let booted = self.arrived + ms(self.profile.boot_ms);
        let Some(verification_token) = self.verify(booted).await? else {
            return Ok(Outcome::VerificationFailed);
        };
        self.verified = true;
        self.requester.tally.down(Gauge::InVerification);
        // Welcome page, then the agreement.
        let next = Instant::now() + ms(self.profile.think_ms);
        if self.profile.manual {
            self.requester.tally.fault(Fault::ManualSetup);
            return self.manual(ticket, &verification_token, next).await;
        }
        let Some(redeemed) = self.redeem(ticket, &verification_token, next).await? else {
            return Ok(Outcome::Expired);
        };
        self.wait_and_sign_in(redeemed, ticket.expires_at).await
    }

    async fn send(&mut self, step: Step, req: ApiRequest, at: Instant) -> Flow<Answer> {
        match self
            .requester
            .call(&self.transport, Some(step), req, at, &mut self.rng)
            .await
        {
            Ok(answer) => Ok(answer),
            Err(CallError::Cancelled) => Err("the run was stopped".into()),
            Err(CallError::Unreachable(e)) => {
                self.requester
                    .tally
                    .error(format!("unreachable: {}", step.as_str()));
                self.requester
                    .stop
                    .because(format!("the server could not be reached: {e}"));
                Err(format!("server unreachable: {e}"))
            }
        }
    }

    fn unexpected(&self, step: Step, answer: &Answer) -> String {
        let code = answer
            .error()
            .map_or_else(|| "ok".to_owned(), |c| c.to_string());
        let kind = format!(
            "unexpected_answer: {} {} {code}",
            step.as_str(),
            answer.status
        );
        self.requester.tally.error(kind.clone());
        kind
    }

    /// Verification; a missing HDMI ingest module fails once, the installer connects it and
    /// restarts. `None` when the console is stuck (not certified).
    async fn verify(&mut self, at: Instant) -> Flow<Option<String>> {
        let mut hdmi_ingest = !self.profile.hdmi_missing;
        let mut at = at;
        loop {
            let body = VerifyRequest {
                make: self.profile.model.make.into(),
                model: self.profile.model.model.into(),
                serial: self.profile.serial.clone(),
                hdmi_ingest,
            };
            let answer = self.send(Step::Verify, calls::verify(&body), at).await?;
            match answer.error() {
                None => {
                    let v: VerifyResponse = answer
                        .parse()
                        .ok_or_else(|| self.unexpected(Step::Verify, &answer))?;
                    if self.profile.hdmi_missing {
                        self.requester.tally.fault(Fault::HdmiRecovered);
                    }
                    return Ok(Some(v.verification_token));
                }
                Some(ErrorCode::VerificationInfoNotFound) if !hdmi_ingest => {
                    self.requester.tally.fault(Fault::HdmiMissing);
                    // The installer connects the module and restarts: the console boots again.
                    hdmi_ingest = true;
                    at = Instant::now() + ms(self.profile.hdmi_fix_ms + self.profile.reboot_ms);
                }
                Some(ErrorCode::UncertifiedDevice) => {
                    self.requester.tally.fault(Fault::Uncertified);
                    return Ok(None);
                }
                Some(_) => return Err(self.unexpected(Step::Verify, &answer)),
            }
        }
    }

    async fn manual(&mut self, ticket: &Ticket, token: &str, at: Instant) -> Flow<Outcome> {
        let password = ticket
            .password
            .clone()
            .ok_or("no password was handed over for manual setup")?;
        let body = ManualSignInRequest {
            email: ticket.upn.clone(),
            password,
            verification_token: token.into(),
        };
        let at = at + ms(self.profile.typing_ms);
        let req = calls::manual_sign_in(&body);
        let answer = self.send(Step::ManualSignIn, req, at).await?;
        if answer.ok() {
            return Ok(Outcome::SignedInManual);
        }
        Err(self.unexpected(Step::ManualSignIn, &answer))
    }

    /// Types the OTP (mistyped `typos` times first). `None` when the OTP had expired. A
    /// throttled attempt (`too_many_attempts`) waits `retry_after_s` and types again.
    async fn redeem(
        &mut self,
        ticket: &Ticket,
        token: &str,
        at: Instant,
    ) -> Flow<Option<RedeemResponse>> {
        let mut at = at;
        let mut attempt = 0;
        let mut throttled = 0;
        while attempt <= self.profile.typos {
            at += ms(self.profile.typing_ms);
            let body = RedeemRequest {
                otp: self.profile.typed_otp(&ticket.otp, attempt),
                verification_token: token.into(),
            };
            let answer = if self.profile.race && attempt == self.profile.typos {
                // Boxed: the race awaits two requests at once, and inline its future would
                // double the size of every console's task for the few that race.
                Box::pin(self.raced(&body, at)).await?
            } else {
                self.send(Step::Redeem, calls::redeem(&body), at).await?
            };
            match answer.error() {
                None => {
                    return answer
                        .parse()
                        .map(Some)
                        .ok_or_else(|| self.unexpected(Step::Redeem, &answer));
                }
                Some(ErrorCode::InvalidOtp) if attempt < self.profile.typos => {
                    self.requester.tally.fault(Fault::OtpTypo);
                    at = Instant::now() + ms(self.profile.think_ms);
                    attempt += 1;
                }
                Some(ErrorCode::TooManyAttempts) if throttled < MAX_THROTTLED => {
                    throttled += 1;
                    self.requester.tally.error("throttled: redeem");
                    let wait_s = answer
                        .error_body()
                        .and_then(|b| b.retry_after_s)
                        .unwrap_or(60);
                    at = Instant::now() + Duration::from_secs(wait_s);
                }
                Some(ErrorCode::OtpExpired) => return Ok(None),
                Some(_) => return Err(self.unexpected(Step::Redeem, &answer)),
            }
        }
        Err("the OTP was refused after every attempt".into())
    }

    async fn wait_and_sign_in(
        &mut self,
        redeemed: RedeemResponse,
        expires_at: Instant,
    ) -> Flow<Outcome> {
        let id = redeemed.request_id.clone();
        let token = redeemed.poll_token.clone();
        self.redeemed = true;
        let status = self.wait_for_decision(redeemed, expires_at).await?;
        match status {
            RequestStatus::Approved => {}
            RequestStatus::Rejected | RequestStatus::Expired => {
                let seen = format!("{id} was {status}, and sign-in handed over credentials");
                self.sign_in_again(&id, &token, "signed_in_after_refusal", seen)
                    .await?;
                return Ok(if status == RequestStatus::Rejected {
                    Outcome::Rejected
                } else {
                    Outcome::Expired
                });
            }
            other => return Err(format!("request ended {other} before sign-in")),
        }
        let answer = self.send(Step::SignIn, calls::sign_in(&id, &token), Instant::now());
        let answer = answer.await?;
        if answer.ok() {
            let seen = format!("{id}: a second sign-in got the credentials again");
            self.sign_in_again(&id, &token, "credentials_handed_twice", seen)
                .await?;
            return Ok(Outcome::SignedInOtp);
        }
        if answer.error() == Some(ErrorCode::RequestNotApproved) {
            let serial = self.profile.serial.as_str();
            self.requester.tally.violation(
                "status_went_back",
                &[serial],
                format!("{id} was approved, then sign-in said it is not approved"),
            );
        }
        Err(self.unexpected(Step::SignIn, &answer))
    }

    /// Polls the request at the interval the server gives until it is no longer awaiting
    /// approval (its OTP expiring at `expires_at` ends that too); answers its status then.
    async fn wait_for_decision(
        &mut self,
        redeemed: RedeemResponse,
        expires_at: Instant,
    ) -> Flow<RequestStatus> {
        let id = redeemed.request_id;
        let token = redeemed.poll_token;
        let mut status = redeemed.status;
        let mut interval_s = redeemed.interval_s.max(1);
        let mut polls = 0;
        let waiting_since = Instant::now();
        if status == RequestStatus::AwaitingApproval {
            self.awaiting = true;
            self.requester.tally.up(Gauge::AwaitingApproval);
        }
        while status == RequestStatus::AwaitingApproval {
            let from = Instant::now();
            let interval = Duration::from_secs(u64::from(interval_s));
            let window = (from, interval, expires_at);
            let skipped = self
                .skip_polls(&id, window, MAX_POLLS.saturating_sub(polls))
                .await?;
            polls += skipped + 1;
            if polls > MAX_POLLS {
                return Err("still awaiting approval after the most polls a console makes".into());
            }
            let at = from + interval * (skipped + 1);
            let req = calls::poll(&id, &token);
            let answer = self.send(Step::Poll, req, at).await?;
            match answer.error() {
                None => {
                    let poll: PollResponse = answer
                        .parse()
                        .ok_or_else(|| self.unexpected(Step::Poll, &answer))?;
                    status = poll.status;
                    interval_s = poll.interval_s.max(1);
                }
                Some(ErrorCode::SlowDown) => {
                    self.requester.tally.fault(Fault::SlowDown);
                    let told = answer.error_body().and_then(|b| b.interval_s);
                    interval_s = told.unwrap_or(interval_s + 5).max(1);
                }
                Some(_) => return Err(self.unexpected(Step::Poll, &answer)),
            }
        }
        if self.awaiting {
            self.awaiting = false;
            self.requester.tally.down(Gauge::AwaitingApproval);
            if status != RequestStatus::Expired {
                self.requester.recorder.flow(
                    otpfleet_reports::Flow::WaitForApproval,
                    waiting_since.elapsed(),
                );
            }
        }
        Ok(status)
    }

    /// In a rehearsal (`Requester::decisions`), skips the polls of request `id` that would only
    /// hear "awaiting approval": polls every `interval` from `from`, up to `left` of them and
    /// those safely before the OTP's expiry at `expires_at`, until an admin decides it. Answers
    /// how many it skipped, having left what they would have: one draw each of the console's
    /// stream (a network fault's draw: the rate is 0 whenever polls are skipped) and one
    /// answered poll each in the recorder (no lateness, no service time: simulated time).
    async fn skip_polls(
        &mut self,
        id: &str,
        (from, interval, expires_at): (Instant, Duration, Instant),
        left: u32,
    ) -> Flow<u32> {
        let Some(decisions) = &self.requester.decisions else {
            return Ok(0);
        };
        // The last poll that may be skipped is the one before poll number `last` (which is
        // sent), kept a second clear of the expiry (the server's clock counts milliseconds).
        let clear = expires_at.saturating_duration_since(from + Duration::from_secs(1));
        let last = nanos(clear).saturating_sub(1) / nanos(interval).max(1);
        let last = u32::try_from(last).unwrap_or(u32::MAX).min(left);
        if last < 2 {
            return Ok(0);
        }
        let decided = decisions.watch(id);
        let skipped = tokio::select! {
            biased;
            Ok(()) = decided => {
                // The polls before the decision heard "awaiting approval"; the next one hears it.
                let since = nanos(Instant::now().saturating_duration_since(from));
                let before = since.saturating_sub(1) / nanos(interval).max(1);
                u32::try_from(before).unwrap_or(u32::MAX).min(last - 1)
            }
            () = tokio::time::sleep_until(from + interval * last) => {
                decisions.forget(id);
                last - 1
            }
            () = self.requester.stop.stopped() => {
                decisions.forget(id);
                return Err("the run was stopped".into());
            }
        };
        decisions.skipped(u64::from(skipped));
        for _ in 0..skipped {
            let _ = self.rng.random::<f64>();
        }
        let answered = otpfleet_reports::Answered::Ok;
        let (n, zero) = (u64::from(skipped), Duration::ZERO);
        let recorder = &self.requester.recorder;
        recorder.requests_alike(Step::Poll, n, Some(zero), zero, answered);
        Ok(skipped)
    }

    /// With `double_sign_in`, the console asks for its credentials (again: its answer was
    /// lost; or anyway: its request was refused or expired). Getting them is the broken promise
    /// `kind`.
    async fn sign_in_again(&mut self, id: &str, token: &str, kind: &str, seen: String) -> Flow<()> {
        if !self.profile.double_sign_in {
            return Ok(());
        }
        let answer = self.send(Step::SignIn, calls::sign_in(id, token), Instant::now());
        if answer.await?.ok() {
            let serial = self.profile.serial.as_str();
            self.requester.tally.violation(kind, &[serial], seen);
        }
        Ok(())
    }

    /// Types the OTP while a twin console types the same OTP at the same moment (its own
    /// device, verified just before). The contract lets one of them have it: two successes are
    /// a broken promise. When the twin wins, this console carries on with the twin's request
    /// (the installer with the other device got it), so it still ends in one outcome.
    async fn raced(&mut self, body: &RedeemRequest, at: Instant) -> Flow<Answer> {
        let requester = self.requester;
        let twin = self.transport.dedicated();
        let twin_serial = format!("{}-T", self.profile.serial);
        let mut rng = console_rng(self.profile.flow_seed ^ 0x7417, self.profile.index);
        let device = VerifyRequest {
            make: self.profile.model.make.into(),
            model: self.profile.model.model.into(),
            serial: twin_serial.clone(),
            hdmi_ingest: true,
        };
        let verified = requester
            .call(
                &twin,
                None,
                calls::verify(&device),
                Instant::now(),
                &mut rng,
            )
            .await;
        let Some(token) = verified.ok().and_then(|a| a.parse::<VerifyResponse>()) else {
            return self.send(Step::Redeem, calls::redeem(body), at).await;
        };
        let twin_body = RedeemRequest {
            otp: body.otp.clone(),
            verification_token: token.verification_token,
        };
        let (mine, theirs) = tokio::join!(
            self.send(Step::Redeem, calls::redeem(body), at),
            requester.call(&twin, None, calls::redeem(&twin_body), at, &mut rng)
        );
        let mine = mine?;
        let Ok(theirs) = theirs else {
            return Ok(mine);
        };
        if mine.ok() && theirs.ok() {
            let serials = [self.profile.serial.as_str(), twin_serial.as_str()];
            requester.tally.violation(
                "otp_redeemed_twice",
                &serials,
                "two consoles typing one OTP at the same moment both redeemed it".into(),
            );
        }
        Ok(if mine.ok() || !theirs.ok() {
            mine
        } else {
            theirs
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otpfleet_client::HttpTransport;

    /// A fleet holds the task of every console between arrival and outcome, a rehearsal a
    /// million of them: the bytes of one are the run's memory per console. Rare paths (opening
    /// a connection, a race of two redemptions) are boxed so that the common one stays small:
    /// inline, a fleet's spawned task was 11.5 KB (3.3 KB boxed). This measures `run_console`'s
    /// future: 2.9 KB over HTTP (6.0 KB with the connection inline, 5.0 KB with the race), 2.2 KB
    /// in process (3.6 KB with the race inline).
    #[test]
    fn a_consoles_task_stays_small() {
        let cfg = crate::FleetConfig::default();
        let requester = Requester::new(cfg.clone());
        let ticket = Ticket {
            upn: "room@example.test".into(),
            otp: "ABCD-EFGH-JKLM-NPQR".into(),
            password: None,
            expires_at: Instant::now(),
        };
        let p = ConsoleProfile::draw(&cfg, 0);
        let http = HttpTransport::new("http://127.0.0.1:9", 1, Duration::from_secs(1))
            .expect("a loopback URL");
        let task = run_console(&requester, http, &p, &ticket, Instant::now());
        let bytes = std::mem::size_of_val(&task);
        assert!(bytes <= 4096, "a console's task over HTTP is {bytes} bytes");
        let clock = std::sync::Arc::new(otpfleet_server::clock::ManualClock::default());
        let (app, _) = crate::reference::app(Default::default(), clock);
        let in_process = crate::InProcessTransport::new(app);
        let task = run_console(&requester, in_process, &p, &ticket, Instant::now());
        let bytes = std::mem::size_of_val(&task);
        assert!(
            bytes <= 3072,
            "a console's task in process is {bytes} bytes"
        );
    }
}
