//! The reference server embedded in the emulator's process, for runs without `--target`, and
//! the in-process transport that calls it without a socket (rehearsals).

use otpfleet_client::{Answer, ApiRequest, Transport, TransportError};
use otpfleet_server::http::new_admin_token;
use otpfleet_server::{App, Catalogue, Clock, ServerConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// A reference server on `127.0.0.1:0`, stopped when dropped.
#[derive(Debug)]
pub struct EmbeddedServer {
    pub addr: SocketAddr,
    pub admin_token: String,
    pub app: Arc<App>,
    _stop: oneshot::Sender<()>,
}

impl EmbeddedServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The reference server's app with a fresh admin token (for the in-process transport).
pub fn app(config: ServerConfig, clock: Arc<dyn Clock>) -> (Arc<App>, String) {
    let token = new_admin_token();
    let server = otpfleet_server::assemble(
        config,
        Catalogue::builtin(),
        &otpfleet_server::Storage::InMemory,
        clock,
        &[(token.as_str(), "token-file")],
    )
    .expect("an in-memory server always assembles");
    (Arc::new(server.app), token)
}

/// Starts the reference server on a free loopback port.
pub async fn start(config: ServerConfig, clock: Arc<dyn Clock>) -> std::io::Result<EmbeddedServer> {
    let (app, admin_token) = app(config, clock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(otpfleet_server::serve(listener, Arc::clone(&app), async {
        let _ = stopped.await;
    }));
    Ok(EmbeddedServer {
        addr,
        admin_token,
        app,
        _stop: stop,
    })
}

/// The reference server's request handler, called directly: no socket, no serialization of
/// HTTP, same contract. Under a paused tokio runtime this runs in simulated time.
#[derive(Debug, Clone)]
pub struct InProcessTransport {
    app: Arc<App>,
}

impl InProcessTransport {
    pub fn new(app: Arc<App>) -> InProcessTransport {
        InProcessTransport { app }
    }
}

impl Transport for InProcessTransport {
    fn describe(&self) -> String {
        "in-process reference server (no socket)".into()
    }

    async fn send(&self, req: ApiRequest) -> Result<Answer, TransportError> {
        let sent = Instant::now();
        let request = req.into_http(http::Request::builder())?;
        // The handler's future is large (every route's state): boxed, it is built once on the
        // heap instead of being copied into each caller's future (a rehearsal's memmove).
        let response = Box::pin(otpfleet_server::handle(&self.app, request)).await;
        Answer::read(response, sent).await
    }
}
