//! What every listener of ours holds to: the server's, and the live views' of a run (`fleet
//! --dashboard`, `--metrics-listen`). A bound on open connections, in all and per client
//! address; a deadline for each request's head, which also closes a keep-alive connection idle
//! between requests; and timeouts on a connection that stops sending or stops reading. A
//! connection past a bound is refused at once; a failed accept (a full file table) backs off
//! instead of spinning. About 956 idle connections to a dashboard that had none of this once ran
//! a fleet out of file descriptors and stopped its run.

use super::connections::{Admitted, Connections};
use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use otpfleet_protocol::ErrorCode;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_io_timeout::TimeoutStream;

/// The bounds of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub max_per_address: usize,
    /// A request's head must arrive within this; it also closes a connection idle between
    /// requests.
    pub header_timeout: Duration,
    /// A connection that sends nothing for this long is closed, even mid-answer (`None` for a
    /// listener that streams answers, such as the dashboard's events, to silent clients).
    pub idle_timeout: Option<Duration>,
    /// A connection whose client does not take an answer for this long is closed.
    pub write_timeout: Duration,
}

impl Limits {
    /// A run's live views: a few watchers (a browser's tabs, a Prometheus), all from one
    /// machine, so no bound per address below the total.
    pub const LIVE: Limits = Limits {
        max_connections: 64,
        max_per_address: 64,
        header_timeout: Duration::from_secs(10),
        idle_timeout: None,
        write_timeout: Duration::from_secs(10),
    };

    /// The open connections these bounds allow.
    pub fn connections(&self) -> Arc<Connections> {
        Arc::new(Connections::new(self.max_connections, self.max_per_address))
    }

    /// hyper's HTTP/1.1 with the head deadline.
    pub fn http1(&self) -> http1::Builder {
        http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            .clone()
    }

    /// `stream` with the idle and write timeouts.
    pub fn timed(&self, stream: TcpStream) -> Pin<Box<TimeoutStream<TcpStream>>> {
        let _ = stream.set_nodelay(true);
        let mut stream = TimeoutStream::new(stream);
        stream.set_read_timeout(self.idle_timeout);
        stream.set_write_timeout(Some(self.write_timeout));
        Box::pin(stream)
    }
}

/// A connection as it arrives: let in, or past a bound (and why).
#[derive(Debug)]
pub enum Arrival {
    In {
        stream: TcpStream,
        peer: SocketAddr,
        /// Its place among the open connections, given back when dropped.
        admitted: Admitted,
    },
    Refused {
        stream: TcpStream,
        why: String,
    },
}

/// The next connection to `listener`, admitted against `connections` or refused.
pub async fn arrival(listener: &TcpListener, connections: &Arc<Connections>) -> Arrival {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                return match connections.admit(peer.ip()) {
                    Ok(admitted) => Arrival::In {
                        stream,
                        peer,
                        admitted,
                    },
                    Err(why) => Arrival::Refused { stream, why },
                };
            }
            Err(e) => {
                // Out of file descriptors and the like: back off, do not die.
                eprintln!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// The answer to a connection past a bound: one `503 server_busy` with why, closing it.
pub fn refusal(why: &str) -> Vec<u8> {
    let body = serde_json::json!({"error": ErrorCode::ServerBusy, "message": why}).to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Answers a plain connection past a bound and closes it, without waiting: the answer is small
/// enough for an empty socket buffer, and a client that cannot take it just sees the
/// connection close.
pub fn refuse(stream: TcpStream, why: &str) {
    let _ = stream.try_write(&refusal(why));
}
