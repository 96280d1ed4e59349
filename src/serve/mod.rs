//! `fadvise-shim serve`: a Prometheus exporter. `GET /metrics` reads the
//! statistics directories afresh on every scrape (no registered metrics
//! that go stale) and answers in text format 0.0.4, or OpenMetrics 1.0.0
//! when the `Accept` header prefers it; `GET /healthz` answers `ok`; `GET
//! /` is an index page.
//!
//! The HTTP server and its limits are in `http` (hyper on a one-thread
//! tokio runtime): idle and slow clients cost a connection, never a
//! request slot, and a scrape is answered while they wait. Computing a
//! scrape is serialised (bounded memory). It binds only the address it is
//! given, a `SocketAddr` (no name is looked up), and prints `listening on
//! http://ADDR/metrics` once bound (with port 0, ADDR holds the port
//! chosen).

mod http;
mod monotonic;
pub mod source;

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use crate::cli::ServeArgs;
use crate::metrics::prometheus::{expose, families, Format};
use crate::{Failure, Outcome};
use http::{Answer, Answerer, Request};
use monotonic::Monotonic;

struct Exporter {
    dirs: Vec<PathBuf>,
    monotonic: Mutex<Monotonic>,
}

pub fn main(args: ServeArgs) -> Outcome {
    let dirs = if args.dirs.is_empty() {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        vec![crate::records::default_stats_dir_of(euid)]
    } else {
        args.dirs
    };
    // Sockets are written with MSG_NOSIGNAL (tokio's sockets are std's);
    // ignoring SIGPIPE (which main set back to its default for piped
    // output) makes sure no write of a long-running exporter, stdout
    // included, can end it.
    // SAFETY: changing a signal's disposition before any thread exists
    // has no memory-safety requirement.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let listener = args
        .listen
        .parse::<SocketAddr>()
        .map_err(io::Error::other)
        .and_then(TcpListener::bind)
        .map_err(|error| Failure(format!("listen on {}: {error}", args.listen)))?;
    let address = listener.local_addr()?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on http://{address}/metrics")?;
    stdout.flush()?;
    let exporter = Arc::new(Exporter {
        dirs,
        monotonic: Mutex::new(Monotonic::default()),
    });
    http::serve(listener, exporter)?;
    Ok(ExitCode::SUCCESS)
}

impl Answerer for Exporter {
    fn answer(&self, request: &Request) -> Answer {
        const TEXT: (&str, &str) = ("Content-Type", "text/plain; charset=utf-8");
        let answer = |status, headers, body: &[u8]| Answer {
            status,
            headers,
            body: body.to_vec(),
        };
        if request.method != hyper::Method::GET && request.method != hyper::Method::HEAD {
            return answer(405, vec![("Allow", "GET, HEAD"), TEXT], b"");
        }
        match request.path.as_str() {
            "/metrics" => {
                let format = negotiate(&request.accept);
                match self.scrape(format) {
                    Ok(body) => Answer {
                        status: 200,
                        headers: vec![("Content-Type", format.content_type())],
                        body,
                    },
                    Err(Failure(message)) => answer(500, vec![TEXT], format!("{message}\n").as_bytes()),
                }
            }
            "/healthz" => answer(200, vec![TEXT], b"ok\n"),
            "/" => answer(
                200,
                vec![("Content-Type", "text/html; charset=utf-8")],
                b"<html><body>fadvise-shim exporter: <a href=\"/metrics\">/metrics</a></body></html>\n",
            ),
            _ => answer(404, vec![TEXT], b"not found\n"),
        }
    }
}

impl Exporter {
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
