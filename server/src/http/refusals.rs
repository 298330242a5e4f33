//! Contract bodies for the refusals hyper makes on its own.
//!
//! hyper answers a request it cannot parse itself, before any handler runs: `400` for a bad
//! request line or header, `414` for a URI over 64 KiB, `431` for more than 100 headers or a
//! head over its buffer (about 400 KiB). It writes a bare head with `content-length: 0` and
//! offers no hook to change it, while the contract promises every refusal an
//! `{"error", "message"}` body. [`ContractRefusals`] sits between hyper and the socket,
//! recognises those answers as they are written, and writes the contract's answer instead.
//! It recognises them safely: no answer of the router is a 4xx head with an empty body and no
//! content type (its refusals always carry a JSON body).

use otpfleet_protocol::ErrorCode;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection's stream with hyper's own refusals given contract bodies.
pub struct ContractRefusals<S> {
    inner: S,
    /// The contract answer being written in place of hyper's, and how much of it is written.
    pending: Option<(Vec<u8>, usize)>,
}

impl<S> ContractRefusals<S> {
    pub fn new(inner: S) -> Self {
        ContractRefusals {
            inner,
            pending: None,
        }
    }
}

/// The most a bare head of hyper's own takes (it is about a hundred bytes).
const BARE_HEAD_MAX: usize = 512;

/// The contract answer for a head hyper wrote on its own, if `head` is one. Every answer passes
/// here: the byte checks first turn away all others (a 2xx or 3xx, a head with its body behind
/// it, anything long) without reading them.
fn replacement(head: &[u8]) -> Option<Vec<u8>> {
    let bare = head.len() <= BARE_HEAD_MAX
        && head.starts_with(b"HTTP/1.1 4")
        && head.ends_with(b"\r\n\r\n");
    if !bare {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?;
    let status_line = text.strip_prefix("HTTP/1.1 ")?;
    let own = text.contains("\r\ncontent-length: 0\r\n") && !text.contains("\r\ncontent-type:");
    if !own {
        return None;
    }
    let (code, message) = match status_line.get(..3)? {
        "400" => (
            ErrorCode::MalformedRequest,
            "the request is not well-formed HTTP/1.1 (its request line or a header could not be \
             parsed); nothing was done",
        ),
        "414" => (
            ErrorCode::UriTooLong,
            "the request's path and query are longer than the server reads (64 KiB); nothing \
             was done",
        ),
        "431" => (
            ErrorCode::HeadersTooLarge,
            "the request has more than 100 headers, or its head is larger than the server \
             reads (about 400 KiB); nothing was done",
        ),
        _ => return None,
    };
    let body = serde_json::json!({"error": code, "message": message}).to_string();
    let reason = status_line.split("\r\n").next().unwrap_or_default();
    Some(
        format!(
            "HTTP/1.1 {reason}\r\nconnection: close\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for ContractRefusals<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ContractRefusals<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.is_none() {
            match replacement(buf) {
                Some(answer) => this.pending = Some((answer, 0)),
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        // hyper sees its head written once the whole contract answer is.
        if let Some((answer, written)) = &mut this.pending {
            while *written < answer.len() {
                match ready!(Pin::new(&mut this.inner).poll_write(cx, &answer[*written..])) {
                    Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Ok(n) => *written += n,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
        }
        this.pending = None;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    // Not vectored: hyper then writes each head in one buffer, where it can be recognised.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_bare_refusals_are_replaced() {
        let hyper = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\n\
                      content-length: 0\r\ndate: Mon, 30 Nov 2026 04:52:28 GMT\r\n\r\n";
        let answer = String::from_utf8(replacement(hyper).expect("replaced")).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"], "headers_too_large");
        // The router's own answers are left alone: they carry a content type and a body.
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n\
                     content-length: 0\r\n\r\n";
        assert!(replacement(ours).is_none());
        assert!(replacement(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(replacement(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n").is_none());
    }
}
