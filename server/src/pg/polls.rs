//! Polls without a database round trip when nothing changed: each replica answers polls from a
//! cache of the requests it has read, and a connection of its own listens for the database's
//! word of every change of a request (`otpfleet_request_changed`, migration 4), which drops
//! the entry. While that connection is down the cache is not trusted (every poll reads the
//! database) and it is emptied, since word may have been missed; its state is also the
//! replica's health: `/healthz` fails while it cannot reach the database, whatever the pool of
//! connections is doing.
//!
//! A read races the word of a change: a replica may read a request, the change commit and its
//! word arrive, and only then the replica cache what it read. So each word is counted (`heard`)
//! and leaves a mark on its request; a read caches what it read only if no word for that
//! request arrived since it began.

use super::{PgError, PgStore};
use crate::domain::store::Decision;
use dashmap::DashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// How often the listening connection is checked (a database that stops answering without
/// closing the connection is found within this and `PING_TIMEOUT`).
const PING_EVERY: Duration = Duration::from_secs(2);
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// How long after a lost connection the next try is made.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// A request not polled at a replica for this long is dropped from its cache.
const IDLE_MS: u64 = 10 * 60_000;

/// What a replica knows of one request, for answering its polls.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Known {
    pub poll_token: [u8; 16],
    pub state: Decision,
    pub expires_ms: u64,
    /// The pacing of this console's polls at this replica.
    pub interval_s: u32,
    pub last_poll_ms: u64,
}

#[derive(Debug, Clone, Copy)]
enum Entry {
    Known(Known),
    /// Word of a change arrived when `heard` reached this count.
    Changed(u64),
}

/// The cache of one replica, shared by its requests and its listener.
#[derive(Debug, Default)]
pub(crate) struct PollCache {
    entries: DashMap<u64, Entry>,
    /// Words heard so far (taken before a read, to know whether one came since).
    heard: AtomicU64,
    /// Whether the listener is connected and listening: only then is the cache trusted.
    listening: AtomicBool,
    /// `heard` when the listener last began to listen: a read begun before may have missed
    /// word, so what it found is not cached.
    since: AtomicU64,
}

impl PollCache {
    /// Whether the listening connection is up (the replica's health).
    pub fn listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// A mark to take before reading a request from the database.
    pub fn before_read(&self) -> u64 {
        self.heard.load(Ordering::Acquire)
    }

    /// Updates the cached request `id` with `f`; `None` when it is not cached or not trusted.
    pub fn update<T>(&self, id: u64, f: impl FnOnce(&mut Known) -> T) -> Option<T> {
        if !self.listening() {
            return None;
        }
        let mut entry = self.entries.get_mut(&id)?;
        match &mut *entry {
            Entry::Known(known) => Some(f(known)),
            Entry::Changed(_) => None,
        }
    }

    /// Caches what a read begun at `mark` found of request `id`, unless word of a change of it
    /// arrived since.
    pub fn insert(&self, id: u64, known: Known, mark: u64) {
        if !self.listening() || mark < self.since.load(Ordering::Acquire) {
            return;
        }
        let mut entry = self.entries.entry(id).or_insert(Entry::Changed(0));
        // Again under the entry's lock: a reconnect may have emptied the cache since the
        // check above (it moves `since` before it empties).
        let stale = mark < self.since.load(Ordering::Acquire);
        if stale || matches!(*entry, Entry::Changed(at) if at > mark) {
            return;
        }
        *entry = Entry::Known(known);
    }

    /// Word that request `id` changed.
    fn changed(&self, id: u64) {
        let at = self.heard.fetch_add(1, Ordering::AcqRel) + 1;
        self.entries.insert(id, Entry::Changed(at));
    }

    /// Forgets every entry (the listener reconnected: word may have been missed).
    fn forget(&self) {
        self.entries.clear();
    }

    fn set_listening(&self, up: bool) {
        if !up {
            self.listening.store(false, Ordering::Release);
        }
        // Emptied on both edges: nothing read while the word was not heard stays.
        let now = self.heard.fetch_add(1, Ordering::AcqRel) + 1;
        self.since.store(now, Ordering::Release);
        self.forget();
        if up {
            self.listening.store(true, Ordering::Release);
        }
    }

    /// Drops marks of changes older than `mark` (taken a sweep ago: no read begun before it is
    /// still running) and requests not polled here for `IDLE_MS` (signed in, given up, or
    /// polling another replica); once a minute, by the sweeper.
    pub fn sweep(&self, mark: u64, now_ms: u64) {
        self.entries.retain(|_, e| match e {
            Entry::Changed(at) => *at >= mark,
            Entry::Known(k) => now_ms.saturating_sub(k.last_poll_ms) < IDLE_MS,
        });
    }
}

impl PgStore {
    /// Listens for word of changed requests for as long as it runs, feeding `cache`, and
    /// reconnects after a lost connection. Spawned by `PgCore::open`.
    pub(crate) async fn listen(self, cache: Arc<PollCache>) {
        let mut last_error = String::new();
        loop {
            let result = self.listen_once(&cache).await;
            cache.set_listening(false);
            if let Err(e) = result {
                let e = e.to_string();
                if e != last_error {
                    eprintln!("{e}; answering 503 storage_unavailable until it is back");
                    last_error = e;
                }
            }
            tokio::time::sleep(RECONNECT_AFTER).await;
        }
    }

    /// One connection's life: LISTEN, then the words until it fails.
    async fn listen_once(&self, cache: &PollCache) -> Result<(), PgError> {
        let unreachable = |e: tokio_postgres::Error| PgError::Unreachable {
            target: self.target.clone(),
            why: super::describe(&e),
        };
        let (client, mut connection) = self
            .config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(unreachable)?;
        let (words, mut heard) = tokio::sync::mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                match message {
                    Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                        let _ = words.send(n.payload().parse::<u64>().ok());
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        let result = async {
            let schema: String = client
                .query_one("SELECT current_schema()", &[])
                .await
                .map_err(unreachable)?
                .get(0);
            client
                .batch_execute(&format!("LISTEN \"otpfleet_requests_{schema}\""))
                .await
                .map_err(unreachable)?;
            cache.set_listening(true);
            let mut ping = tokio::time::interval(PING_EVERY);
            loop {
                tokio::select! {
                    word = heard.recv() => match word {
                        Some(Some(id)) => cache.changed(id),
                        Some(None) => {}
                        None => return Err(self.lost("the listening connection closed")),
                    },
                    _ = ping.tick() => {
                        let pong = tokio::time::timeout(PING_TIMEOUT, client.simple_query(""));
                        match pong.await {
                            Ok(Ok(_)) => {}
                            Ok(Err(e)) => return Err(unreachable(e)),
                            Err(_) => return Err(self.lost("it stopped answering")),
                        }
                    }
                }
            }
        }
        .await;
        driver.abort();
        result
    }

    fn lost(&self, why: &str) -> PgError {
        PgError::Unreachable {
            target: self.target.clone(),
            why: why.to_owned(),
        }
    }
}
