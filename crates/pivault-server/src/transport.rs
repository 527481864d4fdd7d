//! [`JsonParseErrorsIo`]: the connection wrapper that gives hyper's own answers the JSON error shape.
//!
//! A request that hyper cannot parse never reaches the router: hyper answers it by itself with
//! an empty body and closes the connection (400 for an unparsable request line or header, 414
//! for a request target over 65,534 bytes, 431 for a head over its buffer). The wrapper watches
//! what hyper writes on each connection; a response head that is such an automatic answer
//! (status 400, 414 or 431, `content-length: 0`, no `content-type`; every response of the
//! router has a JSON body with a `content-type`, see [`crate::error::log_errors`]) is replaced
//! by the same status with the JSON error `bad_request`, `uri_too_long` or `headers_too_large`.
//! Every other byte passes through untouched.

use pivault_domain::Code;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// One connection (plain TCP or TLS) whose writes answer hyper's parse errors as JSON errors;
/// [`crate::serve_with`] wraps every accepted connection in it.
#[derive(Debug)]
pub struct JsonParseErrorsIo<I> {
    inner: I,
    /// A replacement being written: its bytes, how many are written, and the length of the
    /// buffer it replaces (reported to hyper as written once the replacement is out).
    replacing: Option<(Vec<u8>, usize, usize)>,
}

impl<I> JsonParseErrorsIo<I> {
    /// Wraps one accepted connection.
    #[must_use]
    pub fn new(inner: I) -> Self {
        Self {
            inner,
            replacing: None,
        }
    }
}

/// The JSON replacement of hyper's automatic answer `head`, or `None` if `head` is not one.
#[must_use]
pub fn replacement(head: &[u8]) -> Option<Vec<u8>> {
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")?;
    let text = std::str::from_utf8(&head[..end]).ok()?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next()?;
    let rest = status_line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix("HTTP/1.0 "))?;
    let code = match rest.get(..3)? {
        "400" => Code::BadRequest,
        "414" => Code::UriTooLong,
        "431" => Code::HeadersTooLarge,
        _ => return None,
    };
    let mut empty = false;
    let mut date = None;
    for l in lines {
        let lower = l.to_ascii_lowercase();
        if lower.starts_with("content-type:") {
            return None;
        }
        if let Some(v) = lower.strip_prefix("content-length:") {
            empty = v.trim() == "0";
        }
        if lower.starts_with("date:") {
            date = Some(l);
        }
    }
    if !empty || end + 4 != head.len() {
        return None;
    }
    let body = serde_json::json!({ "error": {
        "code": code,
        "message": code.description(),
    }})
    .to_string();
    let mut out = format!(
        "{status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    if let Some(d) = date {
        out.push_str(d);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.push_str(&body);
    Some(out.into_bytes())
}

impl<I: AsyncWrite + Unpin> JsonParseErrorsIo<I> {
    /// Writes the pending replacement; `Ready(Ok(n))` with the replaced buffer's length when
    /// it is all out.
    fn drive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        loop {
            let Some((bytes, done, len)) = self.replacing.as_mut() else {
                return Poll::Ready(Ok(0));
            };
            if *done == bytes.len() {
                let len = *len;
                self.replacing = None;
                return Poll::Ready(Ok(len));
            }
            match Pin::new(&mut self.inner).poll_write(cx, &bytes[*done..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *done += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for JsonParseErrorsIo<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for JsonParseErrorsIo<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacing.is_none() {
            match replacement(buf) {
                Some(bytes) => this.replacing = Some((bytes, 0, buf.len())),
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        this.drive(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // hyper writes an automatic answer as one buffer (a head and no body).
        if this.replacing.is_some() || (bufs.len() == 1 && replacement(&bufs[0]).is_some()) {
            let first = bufs.first().map_or(&[][..], |b| &b[..]);
            return Pin::new(this).poll_write(cx, first);
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.replacing.is_some() {
            match this.drive(cx) {
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_empty_414_becomes_the_json_error() {
        let head = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: Wed, 02 Dec 2026 14:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(replacement(head).unwrap_or_default()).unwrap_or_default();
        assert!(out.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{out}");
        assert!(out.contains("content-type: application/json\r\n"));
        assert!(out.contains("date: Wed, 02 Dec 2026 14:00:00 GMT\r\n"));
        let body = out.split("\r\n\r\n").nth(1).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        assert_eq!(v["error"]["code"], "uri_too_long");
        assert!(out.contains(&format!("content-length: {}\r\n", body.len())));
    }

    #[test]
    fn responses_of_the_router_pass_through() {
        for head in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"{\"error\":1}",
        ] {
            assert!(replacement(head).is_none(), "{}", String::from_utf8_lossy(head));
        }
    }
}
