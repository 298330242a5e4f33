//! The transport seam: consoles and admins talk to "a server" through [`Transport`]: real HTTP
//! ([`HttpTransport`], any server implementing the contract), or whatever a crate that embeds
//! a server provides (the emulator's in-process transport calls the reference server's handler
//! directly, no socket).

use crate::Answer;
use crate::target::{Target, TargetError};
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
    /// An `If-Match` header: the entity tag of what a decision was vetted on.
    pub if_match: Option<String>,
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
            if_match: None,
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

    /// Sends `If-Match: tag`: the server refuses the request (412) unless it still names what
    /// `tag` was read from.
    pub fn with_if_match(mut self, tag: &str) -> ApiRequest {
        self.if_match = Some(tag.to_owned());
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
        if let Some(tag) = &self.if_match {
            builder = builder.header(header::IF_MATCH, tag);
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
    target: Arc<Target>,
    /// For `https://`: the TLS client settings.
    tls: Option<Arc<rustls::ClientConfig>>,
    pool: Arc<Pool>,
    timeout: Duration,
    per_console: bool,
}

#[derive(Debug)]
struct Pool {
    /// `host:port`, sent as `Host`.
    host: HeaderValue,
    idle: parking_lot::Mutex<Vec<http1::SendRequest<Full<Bytes>>>>,
    permits: Semaphore,
}

impl HttpTransport {
    /// A transport to the server at `url` (`http://HOST:PORT[/BASE]`, or `https://` with the
    /// platform's trusted roots); at most `max_connections` at once.
    pub fn new(
        url: &str,
        max_connections: usize,
        timeout: Duration,
    ) -> Result<HttpTransport, TargetError> {
        let target: Target = url.parse()?;
        let tls = if target.tls {
            Some(crate::target::tls_config(None)?)
        } else {
            None
        };
        Ok(HttpTransport::to(target, tls, max_connections, timeout))
    }

    /// A transport to `target`, with `tls` for an `https://` target (see
    /// [`crate::target::tls_config`]; without it an `https://` target is refused at connect,
    /// never spoken to in plain HTTP).
    pub fn to(
        target: Target,
        tls: Option<Arc<rustls::ClientConfig>>,
        max_connections: usize,
        timeout: Duration,
    ) -> HttpTransport {
        let host = HeaderValue::from_str(&target.authority())
            .unwrap_or_else(|_| HeaderValue::from_static("localhost"));
        HttpTransport {
            tls: tls.filter(|_| target.tls),
            target: Arc::new(target),
            pool: Arc::new(Pool {
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
        HttpTransport {
            pool: Arc::new(Pool {
                host: self.pool.host.clone(),
                idle: parking_lot::Mutex::new(Vec::new()),
                permits: Semaphore::new(1),
            }),
            per_console: false,
            ..self.clone()
        }
    }

    /// Opens a connection: TCP (the host name resolved), TLS for `https://`, HTTP/1.1.
    async fn connect(&self) -> Result<http1::SendRequest<Full<Bytes>>, TransportError> {
        let target = &self.target;
        let at = || target.authority();
        let stream = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|e| TransportError::Connect(format!("{}: {e}", at())))?;
        let _ = stream.set_nodelay(true);
        let config = match (&self.tls, target.tls) {
            (Some(config), true) => config,
            (_, false) => return handshake(stream).await,
            (None, true) => {
                let why = "an https:// target with no TLS settings (see target::tls_config)";
                return Err(TransportError::Connect(format!("{}: {why}", at())));
            }
        };
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
        let name = rustls::pki_types::ServerName::try_from(target.host.clone())
            .map_err(|e| TransportError::Connect(format!("{}: TLS: {e}", at())))?;
        let stream = connector.connect(name, stream).await.map_err(|e| {
            let why = source_chain(&e);
            // A server answering plain HTTP to our ClientHello: say so.
            let hint = if why.contains("InvalidContentType") {
                " (the server does not speak TLS here: is it http://?)"
            } else {
                ""
            };
            TransportError::Connect(format!("{}: TLS: {why}{hint}", at()))
        })?;
        handshake(stream).await
    }

    async fn round_trip(&self, req: ApiRequest) -> Result<Answer, TransportError> {
        // A connection is ours from here (the permit is held): connecting, when needed, is the
        // network's time, so it counts as service, not lateness.
        let sent = Instant::now();
        let idle = self.pool.idle.lock().pop();
        let mut sender = match idle {
            Some(s) if !s.is_closed() => s,
            // Boxed: connecting (TCP, TLS, the HTTP handshake) is a 3.5 KB future, needed once
            // per connection, and every future that awaits a request would carry it inline
            // (a fleet's console task: 11.5 KB, most of it this).
            _ => Box::pin(self.connect()).await?,
        };
        sender
            .ready()
            .await
            .map_err(|e| TransportError::Io(source_chain(&e)))?;
        let mut req = req;
        if !self.target.base_path.is_empty() {
            req.path = format!("{}{}", self.target.base_path, req.path);
        }
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

/// HTTP/1.1 over `io`; the connection runs on its own task until the server closes it or the
/// sender is dropped.
async fn handshake<IO>(io: IO) -> Result<http1::SendRequest<Full<Bytes>>, TransportError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| TransportError::Connect(source_chain(&e)))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
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
        self.target.url()
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

/// Several replicas of one server, reached without a load balancer, the way a rollout's
/// consoles reach them and the way races cross instances: each request goes to the next
/// replica, so consecutive requests of one console go to different replicas. A console's own
/// transport ([`Transport::dedicated`]) starts one replica after where its parent is, so the
/// two consoles of a race (the twin verifies, then both redeem) redeem on different replicas.
/// With one replica it is that replica's transport.
#[derive(Debug, Clone)]
pub struct Spread {
    replicas: Arc<[HttpTransport]>,
    turn: Arc<std::sync::atomic::AtomicUsize>,
}

impl Spread {
    /// Requests spread over `replicas` (at least one), starting with the first.
    pub fn over(replicas: Vec<HttpTransport>) -> Spread {
        assert!(!replicas.is_empty(), "a spread over no replica");
        Spread {
            replicas: replicas.into(),
            turn: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        }
    }

    /// Gives every console its own connection to each replica instead of the shared pools.
    pub fn per_console(self) -> Spread {
        Spread {
            replicas: self
                .replicas
                .iter()
                .cloned()
                .map(HttpTransport::per_console)
                .collect(),
            ..self
        }
    }

    /// The replicas, in turn order.
    pub fn replicas(&self) -> &[HttpTransport] {
        &self.replicas
    }
}

impl Transport for Spread {
    fn dedicated(&self) -> Self {
        use std::sync::atomic::Ordering::Relaxed;
        let start = self.turn.fetch_add(1, Relaxed).wrapping_add(1);
        Spread {
            replicas: self.replicas.iter().map(Transport::dedicated).collect(),
            turn: Arc::new(std::sync::atomic::AtomicUsize::new(start)),
        }
    }

    fn describe(&self) -> String {
        let urls: Vec<String> = self.replicas.iter().map(Transport::describe).collect();
        urls.join(",")
    }

    async fn send(&self, req: ApiRequest) -> Result<Answer, TransportError> {
        let turn = match self.replicas.len() {
            1 => 0,
            n => self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % n,
        };
        self.replicas[turn].send(req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// A base path prefixes every route, and `Host` names the target.
    #[tokio::test]
    async fn requests_go_under_the_base_path() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut head = vec![0u8; 4096];
            let n = stream.read(&mut head).await.expect("read");
            let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
            stream.write_all(answer.as_bytes()).await.expect("write");
            String::from_utf8_lossy(&head[..n]).into_owned()
        });
        let url = format!("http://localhost:{port}/otp/base/");
        let t = HttpTransport::new(&url, 1, Duration::from_secs(5)).expect("a URL");
        assert_eq!(t.describe(), format!("http://localhost:{port}/otp/base"));
        let answer = t
            .send(crate::calls::get_preferences("t"))
            .await
            .expect("answer");
        assert_eq!(answer.status, 200);
        let head = server.await.expect("server");
        let line = head.lines().next().unwrap_or_default();
        let path = RouteId::GetPreferences.path();
        assert_eq!(line, format!("GET /otp/base{path} HTTP/1.1"), "{head}");
        assert!(head.contains(&format!("host: localhost:{port}")), "{head}");
    }

    /// Consecutive requests go to different replicas, and a console's own transport starts
    /// one replica after its parent's next: the twin's redemption (its second request) and
    /// the console's (its next) land on different replicas.
    #[tokio::test]
    async fn a_spread_takes_the_replicas_in_turn_and_races_cross_them() {
        let mut servers = Vec::new();
        let mut replicas = Vec::new();
        for _ in 0..2 {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let counted = Arc::clone(&seen);
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    let counted = Arc::clone(&counted);
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 4096];
                        while let Ok(n) = stream.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
                            let _ = stream.write_all(answer.as_bytes()).await;
                        }
                    });
                }
            });
            servers.push(seen);
            let url = format!("http://127.0.0.1:{port}");
            replicas.push(HttpTransport::new(&url, 4, Duration::from_secs(5)).unwrap());
        }
        let spread = Spread::over(replicas);
        let count = |i: usize| servers[i].load(std::sync::atomic::Ordering::SeqCst);
        let req = || crate::calls::get_preferences("t");
        spread.send(req()).await.unwrap();
        assert_eq!((count(0), count(1)), (1, 0));
        spread.send(req()).await.unwrap();
        assert_eq!(
            (count(0), count(1)),
            (1, 1),
            "the next request, the next replica"
        );
        // A race: the twin verifies and redeems; the console redeems.
        let twin = spread.dedicated();
        twin.send(req()).await.unwrap();
        let before = (count(0), count(1));
        twin.send(req()).await.unwrap();
        let twin_went = usize::from(count(1) > before.1);
        let before = (count(0), count(1));
        spread.send(req()).await.unwrap();
        let console_went = usize::from(count(1) > before.1);
        assert_ne!(twin_went, console_went, "both redemptions on one replica");
        assert!(spread.describe().contains(','), "{}", spread.describe());
    }
}
