//! The transport seam: consoles and admins talk to "a server" through [`Transport`], either real
//! HTTP ([`HttpTransport`], any server implementing the contract) or in process
//! ([`InProcessTransport`], the reference server's handler called directly, no socket).

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use otpfleet_server::App;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// One request of the contract.
#[derive(Debug, Clone)]
pub struct ApiRequest {
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
            method: Method::GET,
            path: path.into(),
            bearer: None,
            content_type: None,
            body: Bytes::new(),
        }
    }

    pub fn post_json(path: impl Into<String>, body: &impl serde::Serialize) -> ApiRequest {
        ApiRequest {
            method: Method::POST,
            path: path.into(),
            bearer: None,
            content_type: Some("application/json"),
            body: Bytes::from(serde_json::to_vec(body).unwrap_or_default()),
        }
    }

    pub fn with_bearer(mut self, token: &str) -> ApiRequest {
        self.bearer = Some(token.to_owned());
        self
    }
}

/// A complete answer.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Bytes,
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

/// A way to send contract requests to a server.
pub trait Transport: Clone + Send + Sync + 'static {
    fn send(
        &self,
        req: ApiRequest,
    ) -> impl Future<Output = Result<ApiResponse, TransportError>> + Send;

    /// A transport for one console's own use: by default the shared one; HTTP can give each
    /// console its own connection.
    fn dedicated(&self) -> Self {
        self.clone()
    }

    /// What this transport reaches, for reports.
    fn describe(&self) -> String;
}

/// Real HTTP through a pooled hyper-util client, with at most `max_connections` requests (and so
/// connections) in flight.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    in_flight: Arc<Semaphore>,
    timeout: Duration,
    per_console: bool,
}

impl HttpTransport {
    /// `base` is the server's URL without a trailing slash, e.g. `http://127.0.0.1:8080`.
    pub fn new(base: &str, max_connections: usize, timeout: Duration) -> HttpTransport {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(max_connections)
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        HttpTransport {
            base: base.trim_end_matches('/').to_owned(),
            client,
            in_flight: Arc::new(Semaphore::new(max_connections.max(1))),
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

    async fn round_trip(&self, req: ApiRequest) -> Result<ApiResponse, TransportError> {
        let mut builder = Request::builder()
            .method(req.method)
            .uri(format!("{}{}", self.base, req.path));
        if let Some(token) = &req.bearer {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(ct) = req.content_type {
            builder = builder.header(header::CONTENT_TYPE, ct);
        }
        let request = builder
            .body(Full::new(req.body))
            .map_err(|e| TransportError::Io(e.to_string()))?;
        let response = self.client.request(request).await.map_err(|e| {
            if e.is_connect() {
                TransportError::Connect(source_chain(&e))
            } else {
                TransportError::Io(source_chain(&e))
            }
        })?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| TransportError::Io(e.to_string()))?
            .to_bytes();
        Ok(ApiResponse { status, body })
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

    async fn send(&self, req: ApiRequest) -> Result<ApiResponse, TransportError> {
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| TransportError::Io("the transport was closed".into()))?;
        match tokio::time::timeout(self.timeout, self.round_trip(req)).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout(self.timeout)),
        }
    }
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

    async fn send(&self, req: ApiRequest) -> Result<ApiResponse, TransportError> {
        let mut builder = Request::builder().method(req.method).uri(req.path);
        if let Some(token) = &req.bearer {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(ct) = req.content_type {
            builder = builder.header(header::CONTENT_TYPE, ct);
        }
        let request = builder
            .body(Full::new(req.body))
            .map_err(|e| TransportError::Io(e.to_string()))?;
        let response = otpfleet_server::handle(&self.app, request).await;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| TransportError::Io(e.to_string()))?
            .to_bytes();
        Ok(ApiResponse { status, body })
    }
}
