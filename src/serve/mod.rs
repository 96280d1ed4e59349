//! `fadvise-shim serve`: a Prometheus exporter. `GET /metrics` reads the
//! statistics directories afresh on every scrape (no registered metrics
//! that go stale) and answers in text format 0.0.4, or OpenMetrics 1.0.0
//! when the `Accept` header prefers it; `GET /healthz` answers `ok`; `GET
//! /` is an index page.
//!
//! One thread per connection, at most `MAX_CONNECTIONS` at once: a slow
//! scraper holds only its own thread, and each connection has a deadline
//! for its request and a timeout for each write (see `http`), so a client
//! that connects and sends nothing frees its thread. Past the cap a
//! connection gets 503 and is closed by the accepting thread, which never
//! waits on a client. Computing a scrape is serialised (bounded memory),
//! sending it is not. It binds only the address it is given and prints
//! `listening on http://ADDR/metrics` once bound (with port 0, ADDR holds
//! the port chosen).

mod http;
mod monotonic;
pub mod source;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::cli::ServeArgs;
use crate::report::prometheus::{expose, families, Format};
use crate::{Failure, Outcome};
use http::{Refusal, Request};
use monotonic::Monotonic;

/// Connections served at once; Prometheus servers scrape one at a time
/// each, so this leaves room for several plus curl.
const MAX_CONNECTIONS: usize = 32;

struct Exporter {
    dirs: Vec<PathBuf>,
    monotonic: Mutex<Monotonic>,
    connections: AtomicUsize,
}

pub fn main(args: ServeArgs) -> Outcome {
    let dirs = if args.dirs.is_empty() {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        vec![crate::records::default_stats_dir_of(euid)]
    } else {
        args.dirs
    };
    // std's TcpStream already sends with MSG_NOSIGNAL; ignoring SIGPIPE
    // (which main set back to its default for piped output) makes sure no
    // write of a long-running exporter, stdout included, can end it.
    // SAFETY: changing a signal's disposition before any thread exists
    // has no memory-safety requirement.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let listener = TcpListener::bind(&args.listen)
        .map_err(|error| Failure(format!("listen on {}: {error}", args.listen)))?;
    let address = listener.local_addr()?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on http://{address}/metrics")?;
    stdout.flush()?;
    let exporter = Arc::new(Exporter {
        dirs,
        monotonic: Mutex::new(Monotonic::default()),
        connections: AtomicUsize::new(0),
    });
    for stream in listener.incoming() {
        // Accept errors (EMFILE, a connection reset before accept) are the
        // client's or passing: keep serving the others, without spinning
        // on one that lasts.
        let Ok(stream) = stream else {
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        if exporter.connections.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            exporter.connections.fetch_sub(1, Ordering::AcqRel);
            refuse_busy(stream);
            continue;
        }
        let worker = Arc::clone(&exporter);
        let spawned = thread::Builder::new().name("scrape".into()).spawn(move || {
            let _slot = Slot(&worker.connections);
            worker.serve_connection(stream);
        });
        if spawned.is_err() {
            // The closure (and the count it would release) is gone.
            exporter.connections.fetch_sub(1, Ordering::AcqRel);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A connection's place under `MAX_CONNECTIONS`, given back when its
/// thread ends, even by a panic.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A 503 written without waiting: a fresh socket's send buffer takes it
/// whole, and if it does not the client loses only the explanation.
fn refuse_busy(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(true);
    let _ = stream.write_all(
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
}

impl Exporter {
    fn serve_connection(&self, mut stream: TcpStream) {
        let (status, headers, body, with_body) = match http::read_request(&mut stream) {
            Ok(request) => {
                let (status, headers, body) = self.route(&request);
                (status, headers, body, request.method != "HEAD")
            }
            Err(Refusal::Status(status)) => (status, Vec::new(), Vec::new(), true),
            Err(Refusal::Close) => return,
        };
        // A client that went away mid-response has nothing left to tell.
        let _ = http::respond(&mut stream, status, &headers, &body, with_body);
    }

    fn route(&self, request: &Request) -> (u16, Vec<(&'static str, &'static str)>, Vec<u8>) {
        const TEXT: (&str, &str) = ("Content-Type", "text/plain; charset=utf-8");
        if request.method != "GET" && request.method != "HEAD" {
            return (405, vec![("Allow", "GET, HEAD"), TEXT], Vec::new());
        }
        match request.path.as_str() {
            "/metrics" => {
                let format = negotiate(&request.accept);
                match self.scrape(format) {
                    Ok(body) => (200, vec![("Content-Type", format.content_type())], body),
                    Err(Failure(message)) => (500, vec![TEXT], format!("{message}\n").into()),
                }
            }
            "/healthz" => (200, vec![TEXT], b"ok\n".to_vec()),
            "/" => (
                200,
                vec![("Content-Type", "text/html; charset=utf-8")],
                b"<html><body>fadvise-shim exporter: <a href=\"/metrics\">/metrics</a></body></html>\n"
                    .to_vec(),
            ),
            _ => (404, vec![TEXT], b"not found\n".to_vec()),
        }
    }

    /// One scrape: the directories read now, counters held monotonic.
    ///
    /// Scrapes are computed one at a time (the lock is held from reading
    /// to rendering, not while the response is sent, so a slow reader
    /// holds up nobody): a scrape holds one `Snapshot` (about 300 KiB) per
    /// identity while it reads, and concurrent ones would multiply that.
    fn scrape(&self, format: Format) -> Result<Vec<u8>, Failure> {
        let mut monotonic = self
            .monotonic
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let collected = source::collect(&self.dirs)?;
        let mut families = families(collected.processes, Some(collected.unreadable));
        monotonic.apply(&mut families);
        Ok(expose(&families, format))
    }
}

/// OpenMetrics 1.0.0 if `accept` ranks it at least as high as the text
/// format, else text 0.0.4 (also for no `Accept`, or `*/*`).
fn negotiate(accept: &str) -> Format {
    let mut openmetrics = 0.0f64;
    let mut text = 0.0f64;
    for range in accept.split(',') {
        let mut parameters = range.split(';').map(str::trim);
        let media = parameters.next().unwrap_or("").to_ascii_lowercase();
        let mut quality = 1.0;
        let mut version = None;
        for parameter in parameters {
            match parameter.split_once('=') {
                Some(("q", value)) => quality = value.parse().unwrap_or(0.0),
                Some(("version", value)) => version = Some(value),
                _ => {}
            }
        }
        match media.as_str() {
            "application/openmetrics-text" if version.is_none_or(|v| v == "1.0.0") => {
                openmetrics = openmetrics.max(quality)
            }
            "text/plain" | "text/*" | "*/*" => text = text.max(quality),
            _ => {}
        }
    }
    if openmetrics > 0.0 && openmetrics >= text {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_only_when_asked_for_first() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(negotiate(prometheus), Format::OpenMetrics);
        assert_eq!(
            negotiate("application/openmetrics-text"),
            Format::OpenMetrics
        );
        for text in [
            "",
            "*/*",
            "text/plain",
            "application/openmetrics-text;version=0.0.1",
            "application/openmetrics-text;q=0.2,text/plain;q=0.5",
            "application/openmetrics-text;q=0",
        ] {
            assert_eq!(negotiate(text), Format::Text, "{text}");
        }
    }
}
