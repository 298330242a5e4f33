//! The live views' own HTTP/1.1 server: one answer function per listener.

use http_body_util::{BodyExt as _, Full, combinators::UnsyncBoxBody};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use otpfleet_server::http::listen::{self, Arrival, Limits};
use std::convert::Infallible;

/// The body of a watcher's answer: a whole text, or a stream of events.
pub(super) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Serves `answer` over HTTP/1.1 on `listener` until the runtime stops, within the bounds every
/// listener of ours holds to (`Limits::LIVE`: a few dozen connections, a head within 10 s, a
/// client that stops reading let go).
pub(super) fn serve<F>(listener: tokio::net::TcpListener, answer: F)
where
    F: Fn(&Request<Incoming>) -> Response<Body> + Clone + Send + Sync + 'static,
{
    let limits = Limits::LIVE;
    let connections = limits.connections();
    tokio::spawn(async move {
        loop {
            let (stream, admitted) = match listen::arrival(&listener, &connections).await {
                Arrival::In {
                    stream, admitted, ..
                } => (stream, admitted),
                Arrival::Refused { stream, why } => {
                    listen::refuse(stream, &why);
                    continue;
                }
            };
            let answer = answer.clone();
            let http = limits.http1();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let reply = answer(&req);
                    async move { Ok::<_, Infallible>(reply) }
                });
                let io = hyper_util::rt::TokioIo::new(limits.timed(stream));
                let _ = http.serve_connection(io, service).await;
                drop(admitted);
            });
        }
    });
}

/// A whole answer.
pub(super) fn reply(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(body).boxed_unsync());
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}
