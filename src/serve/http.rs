//! Just enough HTTP/1.1 for an exporter: read one request head (no body),
//! write one response, close. Small enough to read whole, and every limit
//! is explicit:
//!
//! - the head (request line and headers) is at most `MAX_HEAD` bytes, else
//!   431; it must arrive within `HEAD_DEADLINE` in total, however slowly
//!   it trickles in (a slowloris client), else the connection is closed;
//! - anything that is not `METHOD SP TARGET SP HTTP/1.x` followed by
//!   `name: value` lines is 400;
//! - a request body is never read: every response closes the connection,
//!   so nothing left unread can be taken for a next request (what the
//!   client still sends is drained briefly, see `linger`).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Request line plus headers; Prometheus sends a few hundred bytes.
pub const MAX_HEAD: usize = 8 * 1024;
/// Time allowed for the whole head to arrive.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(10);
/// Time allowed for each write of the response to make progress.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long, and how much, a closing connection's input is still read.
const LINGER: Duration = Duration::from_millis(500);
const MAX_LINGER_BYTES: usize = 1 << 20;

/// The parts of a request the exporter looks at.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path, without any query string.
    pub path: String,
    /// Every `Accept` header, joined with commas.
    pub accept: String,
}

/// Why no request could be read.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Answer with this status.
    Status(u16),
    /// Say nothing: the client went away or was too slow.
    Close,
}

/// Reads one request head from `stream`.
pub fn read_request(stream: &mut TcpStream) -> Result<Request, Refusal> {
    let deadline = Instant::now() + HEAD_DEADLINE;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = end_of_head(&head) {
            head.truncate(end);
            return parse(&head);
        }
        if head.len() > MAX_HEAD {
            return Err(Refusal::Status(431));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Err(Refusal::Close);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err(Refusal::Close),
            Ok(read) => head.extend_from_slice(&chunk[..read]),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(Refusal::Close),
        }
    }
}

/// Where the head ends (before the blank line), if it has: `\r\n\r\n`, or
/// bare `\n\n` from lenient clients.
fn end_of_head(bytes: &[u8]) -> Option<usize> {
    let crlf = bytes.windows(4).position(|window| window == b"\r\n\r\n");
    let lf = bytes.windows(2).position(|window| window == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Parses a head (without its blank line).
pub fn parse(head: &[u8]) -> Result<Request, Refusal> {
    let bad = Refusal::Status(400);
    if head.len() > MAX_HEAD {
        return Err(Refusal::Status(431));
    }
    let text = std::str::from_utf8(head).map_err(|_| Refusal::Status(400))?;
    let mut lines = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line));
    let request_line = lines.next().ok_or(Refusal::Status(400))?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad);
    };
    if method.is_empty() || !method.bytes().all(is_token) {
        return Err(bad);
    }
    if !target.starts_with('/') || target.bytes().any(|b| b.is_ascii_control()) {
        return Err(bad);
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(bad);
    }
    let mut accept = Vec::new();
    for line in lines {
        // No obsolete line folding, no header without a colon.
        let (name, value) = line.split_once(':').ok_or(Refusal::Status(400))?;
        if name.is_empty() || !name.bytes().all(is_token) {
            return Err(Refusal::Status(400));
        }
        if name.eq_ignore_ascii_case("accept") {
            accept.push(value.trim());
        }
    }
    let path = target.split('?').next().unwrap_or(target);
    Ok(Request {
        method: method.to_string(),
        path: path.to_string(),
        accept: accept.join(","),
    })
}

/// RFC 9110 `tchar`.
fn is_token(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// Writes a whole response and closes the connection. `body` is left out
/// for `HEAD`, but its length is still sent.
pub fn respond(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
    with_body: bool,
) -> io::Result<()> {
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes())?;
    if with_body {
        stream.write_all(body)?;
    }
    stream.flush()?;
    linger(stream);
    Ok(())
}

/// Closes our side, then reads and discards what the client still sends
/// (a refused request's rest, a body), briefly and boundedly, until it
/// closes too. Closing a socket with unread input makes the kernel send a
/// reset, which can destroy the response before the client reads it.
fn linger(stream: &mut TcpStream) {
    if stream.shutdown(std::net::Shutdown::Write).is_err()
        || stream.set_read_timeout(Some(LINGER)).is_err()
    {
        return;
    }
    let deadline = Instant::now() + LINGER;
    let mut discard = [0u8; 4096];
    let mut left = MAX_LINGER_BYTES;
    while left > 0 && Instant::now() < deadline {
        match stream.read(&mut discard) {
            Ok(0) | Err(_) => return,
            Ok(read) => left = left.saturating_sub(read),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prometheus_request_parses() {
        let head = b"GET /metrics?x=1 HTTP/1.1\r\nHost: h\r\nAccept: application/openmetrics-text;version=1.0.0\r\naccept: text/plain;q=0.5";
        assert_eq!(
            parse(head),
            Ok(Request {
                method: "GET".into(),
                path: "/metrics".into(),
                accept: "application/openmetrics-text;version=1.0.0,text/plain;q=0.5".into(),
            })
        );
    }

    #[test]
    fn malformed_heads_are_400_and_huge_ones_431() {
        for head in [
            &b""[..],
            b"GET",
            b"GET /metrics",
            b"GET  /metrics HTTP/1.1",
            b"GET metrics HTTP/1.1",
            b"GET /metrics HTTP/2",
            b"G(T /metrics HTTP/1.1",
            b"GET /metrics HTTP/1.1\r\nno colon",
            b"GET /metrics HTTP/1.1\r\n folded: line",
            b"GET /met\x01rics HTTP/1.1",
            b"GET /\xff HTTP/1.1",
        ] {
            assert_eq!(parse(head), Err(Refusal::Status(400)), "{head:?}");
        }
        let huge = [b'a'; MAX_HEAD + 1];
        assert_eq!(parse(&huge), Err(Refusal::Status(431)));
    }

    #[test]
    fn the_head_ends_at_the_first_blank_line() {
        assert_eq!(end_of_head(b"GET / HTTP/1.1\r\n\r\nbody\n\n"), Some(14));
        assert_eq!(end_of_head(b"GET / HTTP/1.1\n\n"), Some(14));
        assert_eq!(end_of_head(b"GET / HTTP/1.1\r\n"), None);
    }
}
