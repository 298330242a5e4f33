//! The socket side: accept loop, per-connection hyper service, timeouts, graceful shutdown, and
//! the housekeeping once a minute: purging expired batch exports and recording expired OTPs in
//! the audit log.

use super::App;
use super::body::reply_error;
use super::connections::Admitted;
use super::listen::{self, Arrival, Limits};
use super::refusals::ContractRefusals;
use crate::domain::ApiError;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use otpfleet_protocol::ErrorCode;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// How long open connections get to finish after shutdown is asked for.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often expired batch exports are purged and expired OTPs recorded.
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// Serves the contract on `listener` until `shutdown` resolves, then stops accepting and lets
/// open requests finish (up to 10 s).
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_with(listener, app, None, shutdown).await
}

/// [`serve`] over TLS: each connection's handshake (bounded by the request timeout) before its
/// HTTP/1.1.
pub async fn serve_tls(
    listener: TcpListener,
    app: Arc<App>,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    serve_with(listener, app, Some(acceptor), shutdown).await
}

async fn serve_with(
    listener: TcpListener,
    app: Arc<App>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut purge = tokio::time::interval(PURGE_EVERY);
    // The settings stay the same when a durable server rebuilds its state.
    let config = Arc::new(app.served().core.config().clone());
    let recovery = tokio::spawn(Arc::clone(&app).recover());
    let upkeep = app.postgres().map(|pg| {
        let clock = Arc::clone(&app.clock);
        tokio::spawn(upkeep(Arc::clone(pg), clock))
    });
    tokio::pin!(shutdown);
    let refusing = Arc::new(Semaphore::new(MAX_TLS_REFUSALS));
    loop {
        tokio::select! {
            arrived = listen::arrival(&listener, &app.connections) => match arrived {
                Arrival::In { stream, peer, admitted } => {
                    let accepted = (stream, peer, tls.clone());
                    serve_connection(&app, &config, graceful.watcher(), accepted, admitted);
                }
                Arrival::Refused { stream, why } => match &tls {
                    None => listen::refuse(stream, &why),
                    Some(acceptor) => refuse_tls(acceptor.clone(), stream, why, &refusing),
                },
            },
            _ = purge.tick(), if upkeep.is_none() => sweep(&app),
            () = &mut shutdown => break,
        }
    }
    recovery.abort();
    if let Some(upkeep) = upkeep {
        upkeep.abort();
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {
            eprintln!("some connections were still open after {DRAIN_TIMEOUT:?}; closing them");
        }
    }
    Ok(())
}

/// Serves one admitted connection: TLS first when the server has it, then hyper's HTTP/1.1 with
/// the contract's timeouts, the client address of each request, and hyper's own refusals given
/// the contract's body.
fn serve_connection(
    app: &Arc<App>,
    config: &Arc<crate::ServerConfig>,
    watcher: Watcher,
    (stream, peer, tls): (TcpStream, SocketAddr, Option<tokio_rustls::TlsAcceptor>),
    admitted: Admitted,
) {
    // A client that stops sending, or stops reading its answers, loses the connection instead
    // of holding it (and a file descriptor) forever.
    let limits = limits(config);
    let stream = limits.timed(stream);
    let service = service_fn({
        let app = Arc::clone(app);
        let config = Arc::clone(config);
        move |mut req: http::Request<hyper::body::Incoming>| {
            let client = client_address(peer.ip(), req.headers(), &config.trusted_proxies);
            req.extensions_mut().insert(super::ClientAddr(client));
            answer(Arc::clone(&app), req, config.request_timeout)
        }
    });
    let http = limits.http1();
    let handshake_timeout = config.request_timeout;
    tokio::spawn(async move {
        // Connection errors (resets, malformed HTTP, timeouts, failed handshakes) end that
        // connection only; its place is given back when it ends.
        match tls {
            None => {
                let io = TokioIo::new(ContractRefusals::new(stream));
                let _ = watcher.watch(http.serve_connection(io, service)).await;
            }
            Some(acceptor) => {
                let handshake = tokio::time::timeout(handshake_timeout, acceptor.accept(stream));
                if let Ok(Ok(stream)) = handshake.await {
                    let io = TokioIo::new(ContractRefusals::new(stream));
                    let _ = watcher.watch(http.serve_connection(io, service)).await;
                }
            }
        }
        drop(admitted);
    });
}

/// The TLS settings of `serve --tls-cert --tls-key`: the certificate chain and private key from
/// PEM files, ALPN `http/1.1`.
pub fn tls_server_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| format!("the certificate {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "the certificate {} holds no PEM certificate",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("the private key {}: {e}", key.display()))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the certificate and key do not go together: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// How often the audit chain is extended (by the one replica elected to, see `pg::Chainer`).
const CHAIN_EVERY: Duration = Duration::from_secs(1);

/// The upkeep of a replica on PostgreSQL, for as long as it serves: the audit chain extended
/// every second whenever this replica is the elected chainer (it tries to be elected every
/// second, so when the chainer's replica dies another takes over), and the housekeeping of a
/// minute (`PgCore::sweep`).
async fn upkeep(pg: Arc<crate::pg::PgCore>, clock: Arc<dyn crate::Clock>) {
    let store = pg.store();
    let mut chainer = None;
    let mut tick = tokio::time::interval(CHAIN_EVERY);
    let mut purge = tokio::time::interval(PURGE_EVERY);
    let mut mark = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = purge.tick() => {
                mark = pg.sweep(clock.now_ms(), mark).await;
                continue;
            }
        }
        if chainer.is_none() {
            chainer = store.elect_chainer().await.ok().flatten();
        }
        if let Some(elected) = chainer.as_mut() {
            if let Err(e) = store.link_ready(elected).await {
                eprintln!("audit chain: {e}; electing a chainer again");
                chainer = None;
            }
        }
    }
}

/// The housekeeping of a minute: purges expired exports and records expired OTPs (both walk
/// every account or batch: off the accept loop).
fn sweep(app: &Arc<App>) {
    let app = Arc::clone(app);
    tokio::task::spawn_blocking(move || {
        let now_ms = app.now_ms();
        let served = app.served();
        served.core.purge_expired_exports(now_ms);
        if served.journal_failure().is_none() {
            served.core.record_expiries(now_ms);
        }
    });
}

/// The client a request comes from: the peer, or, when the peer is a trusted proxy, the last
/// address of `X-Forwarded-For` that is not a trusted proxy (addresses to its left were written
/// by whoever sent the request, and are not believed).
pub fn client_address(
    peer: std::net::IpAddr,
    headers: &http::HeaderMap,
    trusted: &[ipnet::IpNet],
) -> std::net::IpAddr {
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse::<std::net::IpAddr>().ok());
    let mut client = peer;
    for hop in hops.collect::<Vec<_>>().into_iter().rev() {
        client = hop;
        if !is_trusted(&hop) {
            break;
        }
    }
    client
}

/// The bounds of the server's listener, from its settings.
fn limits(config: &crate::ServerConfig) -> Limits {
    Limits {
        max_connections: config.max_connections,
        max_per_address: config.max_connections_per_address,
        header_timeout: config.request_timeout,
        idle_timeout: Some(config.idle_timeout),
        write_timeout: config.write_timeout,
    }
}

/// TLS refusals under way at once; past them a connection past a bound is closed unanswered.
const MAX_TLS_REFUSALS: usize = 64;
/// The longest a TLS refusal (the handshake and the answer) may take.
const TLS_REFUSAL_TIMEOUT: Duration = Duration::from_secs(2);

/// Answers a connection to the TLS port past a bound with the `503 server_busy` spoken in TLS
/// (written as plain HTTP, a TLS client saw only `WRONG_VERSION_NUMBER`), off the accept loop
/// and within bounds of its own: at most [`MAX_TLS_REFUSALS`] at once, each within
/// [`TLS_REFUSAL_TIMEOUT`].
fn refuse_tls(
    acceptor: tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    why: String,
    refusing: &Arc<Semaphore>,
) {
    let Ok(permit) = Arc::clone(refusing).try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let refusal = async {
            let mut tls = acceptor.accept(stream).await?;
            tls.write_all(&listen::refusal(&why)).await?;
            tls.shutdown().await
        };
        let _ = tokio::time::timeout(TLS_REFUSAL_TIMEOUT, refusal).await;
        drop(permit);
    });
}

/// One request with the request timeout around it (reading the body included).
async fn answer(
    app: Arc<App>,
    req: http::Request<hyper::body::Incoming>,
    timeout: Duration,
) -> Result<super::body::Reply, std::convert::Infallible> {
    let reply = match tokio::time::timeout(timeout, super::handle(&app, req)).await {
        Ok(reply) => reply,
        Err(_) => reply_error(ApiError::new(
            ErrorCode::RequestTimeout,
            format!(
                "the request took longer than {timeout:?}; a change it asked for may have been \
                 made (or may still be, once the server can write its journal): look before \
                 sending it again"
            ),
        )),
    };
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7, 10.1.2.3".parse().unwrap(),
        );
        let proxy: std::net::IpAddr = "10.0.0.1".parse().unwrap();
        let stranger: std::net::IpAddr = "192.0.2.1".parse().unwrap();
        // Through the proxy: the last hop it did not add is the client (203.0.113.9 was
        // written by the client and is not believed).
        assert_eq!(
            client_address(proxy, &headers, &trusted),
            "198.51.100.7".parse::<std::net::IpAddr>().unwrap()
        );
        assert_eq!(client_address(stranger, &headers, &trusted), stranger);
        assert_eq!(client_address(proxy, &headers, &[]), proxy, "opt-in only");
    }
}
