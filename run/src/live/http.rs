//! The live views' own HTTP/1.1 server: one answer function per listener.

use http_body_util::{BodyExt as _, Full, combinators::UnsyncBoxBody};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use std::convert::Infallible;
use std::time::Duration;

/// The body of a watcher's answer: a whole text, or a stream of events.
pub(super) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Serves `answer` over HTTP/1.1 on `listener` until the runtime stops. A failed accept (a full
/// file table) waits a moment instead of spinning.
pub(super) fn serve<F>(listener: tokio::net::TcpListener, answer: F)
where
    F: Fn(&Request<Incoming>) -> Response<Body> + Clone + Send + Sync + 'static,
{
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let answer = answer.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let reply = answer(&req);
                    async move { Ok::<_, Infallible>(reply) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
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
