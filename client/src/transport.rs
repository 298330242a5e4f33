//! The transport seam: consoles and admins talk to "a server" through [`Transport`]: real HTTP
//! ([`HttpTransport`], any server implementing the contract), or whatever a crate that embeds
//! a server provides (the emulator's in-process transport calls the reference server's handler
//! directly, no socket).

use crate::Answer;
use bytes::Bytes;
use http::HeaderValue;
use http::{Method, Request, header};
use http_body_util::Full;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use otpfleet_protocol::RouteId;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// One request of the contract.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    /// The contract's route, for requests built by [`crate::calls`] (`None` for a raw path).
    pub route: Option<RouteId>,
    pub method: Method,
    /// Path and query, e.g. `/v1/requests?status=awaiting_approval`.
    pub path: String,
    pub bearer: Option<String>,
    pub content_type: Option<&'static str>,
    pub body: Bytes,
}

impl ApiRequest {
    pub fn get(path: impl Into<String>) -> ApiRequest {
        ApiRequest {
            route: None,
            method: Method::GET,
            path: path.into(),
            bearer: None,
            content_type: None,
            body: Bytes::new(),
        }
    }

    /// A POST with no body (decisions and sign-ins carry everything in the path).
    pub fn post(path: impl Into<String>) -> ApiRequest {
        ApiRequest {
            method: Method::POST,
            ..ApiRequest::get(path)
        }
    }

    /// A POST of `body` as JSON. The contract's bodies are plain structs of strings, numbers
    /// and lists: serializing one cannot fail.
    pub fn post_json(path: impl Into<String>, body: &impl serde::Serialize) -> ApiRequest {
        ApiRequest {
            method: Method::POST,
            content_type: Some("application/json"),
            body: Bytes::from(
                serde_json::to_vec(body).expect("a contract body serializes to JSON"),
            ),
            ..ApiRequest::get(path)
        }
    }

    pub fn with_bearer(mut self, token: &str) -> ApiRequest {
        self.bearer = Some(token.to_owned());
        self
    }

    /// The HTTP request, on top of `builder` (which may carry transport headers).
    pub fn into_http(
        self,
        builder: http::request::Builder,
    ) -> Result<Request<Full<Bytes>>, TransportError> {
        let mut builder = builder.method(self.method).uri(self.path);
        if let Some(token) = &self.bearer {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(ct) = self.content_type {
            builder = builder.header(header::CONTENT_TYPE, ct);
        }
        builder
            .body(Full::new(self.body))
            .map_err(|e| TransportError::Io(e.to_string()))
    }
}

/// Why no answer came.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    #[error("the server did not answer within {0:?}")]
    Timeout(Duration),
    #[error("could not reach the server: {0}")]
    Connect(String),
    #[error("the connection failed mid-request: {0}")]
    Io(String),
}

impl TransportError {
    /// The kind of failure, as reports count it: `timeout`, `connect` or `io`.
    pub fn kind(&self) -> &'static str {
        match self {
            TransportError::Timeout(_) => "timeout",
            TransportError::Connect(_) => "connect",
            TransportError::Io(_) => "io",
        }
    }
}

/// A way to send contract requests to a server.
pub trait Transport: Clone + Send + Sync + 'static {
    fn send(&self, req: ApiRequest) -> impl Future<Output = Result<Answer, TransportError>> + Send;

    /// A transport for one console's own use: by default the shared one; HTTP can give each
    /// console its own connection.
    fn dedicated(&self) -> Self {
        self.clone()
    }

    /// What this transport reaches, for reports.
    fn describe(&self) -> String;
}

/// Real HTTP/1.1 over keep-alive connections, at most `max_connections` of them, each carrying
/// one request at a time (as a console's does).
///
/// The pool is ours, over hyper's connection API (`hyper::client::conn::http1`): a semaphore
/// bounds the connections and a stack holds the idle ones. hyper-util's pooled client does more
/// (many hosts, HTTP/2, idle reaping) and cost the generator about 40% of its requests per CPU
/// second on this one-host workload (measured with `scripts/generator-efficiency`).
#[derive(Debug, Clone)]
pub struct HttpTransport {
    base: String,
    pool: Arc<Pool>,
    timeout: Duration,
    per_console: bool,
}

#[derive(Debug)]
struct Pool {
    /// `host:port`, to connect to and to send as `Host`.
    authority: String,
    host: HeaderValue,
    idle: parking_lot::Mutex<Vec<http1::SendRequest<Full<Bytes>>>>,
    permits: Semaphore,
}

impl HttpTransport {
    /// `base` is the server's URL without a path, e.g. `http://127.0.0.1:8080`.
    pub fn new(base: &str, max_connections: usize, timeout: Duration) -> HttpTransport {
        let base = base.trim_end_matches('/').to_owned();
        let authority = base
            .strip_prefix("http://")
            .unwrap_or(&base)
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let host = HeaderValue::from_str(&authority)
            .unwrap_or_else(|_| HeaderValue::from_static("localhost"));
        HttpTransport {
            base,
            pool: Arc::new(Pool {
                authority,
                host,
                idle: parking_lot::Mutex::new(Vec::new()),
                permits: Semaphore::new(max_connections.max(1)),
            }),
            timeout,
            per_console: false,
        }
    }

    /// Gives every console its own connection instead of the shared pool.
    pub fn per_console(mut self) -> HttpTransport {
        self.per_console = true;
        self
    }

    /// A transport with its own single connection (for one-connection-per-console runs).
    pub fn single(&self) -> HttpTransport {
        HttpTransport::new(&self.base, 1, self.timeout)
    }

    async fn connect(&self) -> Result<http1::SendRequest<Full<Bytes>>, TransportError> {
        let stream = tokio::net::TcpStream::connect(&self.pool.authority)
            .await
            .map_err(|e| TransportError::Connect(format!("{}: {e}", self.pool.authority)))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| TransportError::Connect(source_chain(&e)))?;
        tokio::spawn(async move {
            // The connection ends when the server closes it or the sender is dropped.
            let _ = conn.await;
        });
        Ok(sender)
    }

    async fn round_trip(&self, req: ApiRequest) -> Result<Answer, TransportError> {
        // A connection is ours from here (the permit is held): connecting, when needed, is the
        // network's time, so it counts as service, not lateness.
        let sent = Instant::now();
        let idle = self.pool.idle.lock().pop();
        let mut sender = match idle {
            Some(s) if !s.is_closed() => s,
            _ => self.connect().await?,
        };
        sender
            .ready()
            .await
            .map_err(|e| TransportError::Io(source_chain(&e)))?;
        let request =
            req.into_http(Request::builder().header(header::HOST, self.pool.host.clone()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| TransportError::Io(source_chain(&e)))?;
        let answer = Answer::read(response, sent).await?;
        // Back to the pool for the next request, unless the server is closing it.
        if !sender.is_closed() {
            self.pool.idle.lock().push(sender);
        }
        Ok(answer)
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl Transport for HttpTransport {
    fn dedicated(&self) -> Self {
        if self.per_console {
            HttpTransport {
                per_console: true,
                ..self.single()
            }
        } else {
            self.clone()
        }
    }

    fn describe(&self) -> String {
        self.base.clone()
    }

    async fn send(&self, req: ApiRequest) -> Result<Answer, TransportError> {
        let _permit = self
            .pool
            .permits
            .acquire()
            .await
            .map_err(|_| TransportError::Io("the transport was closed".into()))?;
        match tokio::time::timeout(self.timeout, self.round_trip(req)).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout(self.timeout)),
        }
    }
}
