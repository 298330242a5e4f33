//! Bounds on open connections, in all and per client address, so that no one client can take
//! the server from the others (a stranger opening thousands of idle connections once ran it out
//! of file descriptors). At a bound a new connection is answered `503 server_busy` and
//! closed at once: the accept loop never waits for room.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The open connections of a server.
#[derive(Debug)]
pub struct Connections {
    max_total: usize,
    max_per_address: usize,
    total: AtomicUsize,
    by_address: Mutex<HashMap<IpAddr, usize>>,
    refused: AtomicU64,
}

/// A connection let in; it counts until dropped.
#[derive(Debug)]
pub struct Admitted {
    connections: Arc<Connections>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.connections.total.fetch_sub(1, Ordering::Relaxed);
        let mut by_address = self.connections.by_address.lock();
        if let Some(n) = by_address.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                by_address.remove(&self.ip);
            }
        }
    }
}

impl Connections {
    pub fn new(max_total: usize, max_per_address: usize) -> Connections {
        Connections {
            max_total: max_total.max(1),
            max_per_address: max_per_address.max(1),
            total: AtomicUsize::new(0),
            by_address: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
        }
    }

    /// Lets a connection from `ip` in, or says which bound it met.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, String> {
        let mut by_address = self.by_address.lock();
        let mine = by_address.get(&ip).copied().unwrap_or(0);
        let refusal = if mine >= self.max_per_address {
            Some(format!(
                "this address already has {mine} connections open (at most {}): reuse them, or \
                 close some",
                self.max_per_address
            ))
        } else if self.total.load(Ordering::Relaxed) >= self.max_total {
            Some(format!(
                "the server has {} connections open, its most: try again shortly",
                self.max_total
            ))
        } else {
            None
        };
        if let Some(why) = refusal {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(why);
        }
        *by_address.entry(ip).or_insert(0) += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        Ok(Admitted {
            connections: Arc::clone(self),
            ip,
        })
    }

    /// Open connections now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Connections refused at a bound since the server started.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_hold_per_address_and_in_all_and_free_up_on_close() {
        let c = Arc::new(Connections::new(3, 2));
        let (a, b) = ("127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap());
        let a1 = c.admit(a).unwrap();
        let _a2 = c.admit(a).unwrap();
        assert!(c.admit(a).unwrap_err().contains("this address"));
        let _b1 = c.admit(b).unwrap();
        assert!(c.admit(b).unwrap_err().contains("its most"));
        drop(a1);
        assert_eq!(c.open(), 2);
        let _b2 = c.admit(b).unwrap();
        assert_eq!(c.refused(), 2);
    }
}
