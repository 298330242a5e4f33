//! Pre-issued OTPs, each handed to exactly one goose user (or the feeder) with the serial
//! number of the console that types it.
//!
//! The OTPs are generated before the attack, so no OTP generation competes with what a
//! scenario measures, and each is handed out once: a used or expired OTP met during a run is a
//! bug in the scenario, not load.

use std::sync::atomic::{AtomicUsize, Ordering};

use otpfleet_client::Ticket;

/// A pre-issued OTP handed to a console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handed {
    pub ticket: Ticket,
    /// The serial number of the console that redeems it (synthetic, unique per ticket).
    pub serial: String,
}

/// A fixed list of tickets handed out in order, each at most once, to any number of tasks.
///
/// The list never changes after it is built and a ticket's index is taken with one atomic
/// `fetch_add`, so two takers can never get the same ticket.
#[derive(Debug, Default)]
pub struct TicketQueue {
    tickets: Vec<Ticket>,
    /// Console `i`'s serial is this prefix and `i`.
    serial_prefix: String,
    next: AtomicUsize,
}

impl TicketQueue {
    pub fn new(tickets: Vec<Ticket>, serial_prefix: String) -> TicketQueue {
        TicketQueue {
            tickets,
            serial_prefix,
            next: AtomicUsize::new(0),
        }
    }

    /// The serial of console `index` of a queue whose serials start with `prefix`.
    pub fn serial(prefix: &str, index: usize) -> String {
        format!("{prefix}{index:07}")
    }

    /// The next ticket, or `None` once every ticket was handed out.
    pub fn take(&self) -> Option<Handed> {
        // Past the end the cursor grows by one per call; wrapping would take usize::MAX calls.
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.tickets.get(i).map(|ticket| Handed {
            ticket: ticket.clone(),
            serial: TicketQueue::serial(&self.serial_prefix, i),
        })
    }

    /// Tickets issued in all.
    pub fn len(&self) -> usize {
        self.tickets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tickets.is_empty()
    }

    /// Tickets handed out so far.
    pub fn taken(&self) -> usize {
        self.next.load(Ordering::Relaxed).min(self.tickets.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Arc;

    fn tickets(n: usize) -> Vec<Ticket> {
        let expires_at = tokio::time::Instant::now();
        (0..n)
            .map(|i| Ticket {
                upn: format!("room-{i}@load.test"),
                otp: format!("OTP-{i}"),
                password: None,
                expires_at,
            })
            .collect()
    }

    #[test]
    fn racing_takers_never_share_a_ticket_and_get_them_all() {
        let queue = Arc::new(TicketQueue::new(tickets(20_000), "S".into()));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let q = Arc::clone(&queue);
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    while let Some(h) = q.take() {
                        assert_eq!(
                            h.serial,
                            TicketQueue::serial("S", h.ticket.otp[4..].parse().expect("index"))
                        );
                        got.push(h.ticket.otp);
                    }
                    got
                })
            })
            .collect();
        let mut seen = HashSet::new();
        for h in handles {
            for otp in h.join().expect("taker") {
                assert!(seen.insert(otp.clone()), "{otp} was handed out twice");
            }
        }
        assert_eq!(seen.len(), 20_000);
        assert_eq!(queue.taken(), 20_000);
        assert!(queue.take().is_none());
    }
}
