//! Pre-issued OTPs, each handed to exactly one goose user (or the feeder).
//!
//! The OTPs are generated before the attack, so no OTP generation competes with what a
//! scenario measures, and each is handed out once: a used or expired OTP met during a run is a
//! bug in the scenario, not load.

use std::sync::atomic::{AtomicUsize, Ordering};

/// One pre-issued OTP and the console that will type it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The account the OTP was generated for.
    pub upn: String,
    /// `XXXX-XXXX-XXXX-XXXX`.
    pub otp: String,
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
    next: AtomicUsize,
}

impl TicketQueue {
    pub fn new(tickets: Vec<Ticket>) -> TicketQueue {
        TicketQueue {
            tickets,
            next: AtomicUsize::new(0),
        }
    }

    /// The next ticket, or `None` once every ticket was handed out.
    pub fn take(&self) -> Option<&Ticket> {
        // Past the end the cursor grows by one per call; wrapping would take usize::MAX calls.
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.tickets.get(i)
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
        (0..n)
            .map(|i| Ticket {
                upn: format!("room-{i}@load.test"),
                otp: format!("OTP-{i}"),
                serial: format!("S{i}"),
            })
            .collect()
    }

    #[test]
    fn racing_takers_never_share_a_ticket_and_get_them_all() {
        let queue = Arc::new(TicketQueue::new(tickets(20_000)));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let q = Arc::clone(&queue);
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    while let Some(t) = q.take() {
                        got.push(t.otp.clone());
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
