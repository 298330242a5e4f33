//! The admins' desk: which requests admins are deciding or have decided, so one admin's request
//! is skipped by the others (as people in one portal see who is on what) and our admins never
//! race each other to a 409.

use parking_lot::Mutex;
use std::collections::{HashSet, VecDeque};

/// Decided requests the desk remembers (a listing made just before a decision may still show
/// it); older ones are forgotten, bounding its memory (about 10 MB of ids).
pub const DESK_MEMORY: usize = 100_000;

/// The requests admins hold. Bounded: at most the claims in flight plus [`DESK_MEMORY`]
/// decided ones.
#[derive(Debug, Default)]
pub struct Desk {
    inner: Mutex<DeskInner>,
}

#[derive(Debug, Default)]
struct DeskInner {
    claimed: HashSet<String>,
    decided: VecDeque<String>,
}

impl Desk {
    /// Takes a request; false if another admin has it or it was decided.
    pub fn claim(&self, id: &str) -> bool {
        self.inner.lock().claimed.insert(id.to_owned())
    }

    /// Gives a request back undecided (its decision got no answer).
    pub fn release(&self, id: &str) {
        self.inner.lock().claimed.remove(id);
    }

    /// Marks a claimed request decided: nobody takes it again (until it is forgotten).
    pub fn decided(&self, id: &str) {
        let mut d = self.inner.lock();
        d.decided.push_back(id.to_owned());
        if d.decided.len() > DESK_MEMORY {
            if let Some(old) = d.decided.pop_front() {
                d.claimed.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_desk_gives_a_request_to_one_admin() {
        let desk = Desk::default();
        assert!(desk.claim("req_1"));
        assert!(!desk.claim("req_1"));
        desk.release("req_1");
        assert!(desk.claim("req_1"));
        desk.decided("req_1");
        assert!(!desk.claim("req_1"), "a decided request is not taken again");
        for i in 0..DESK_MEMORY {
            desk.decided(&format!("old_{i}"));
        }
        assert!(desk.claim("req_1"), "the desk forgets the oldest decisions");
    }
}
