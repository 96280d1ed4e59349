//! The exporter's HTTP/1.1 server: hyper's connection state machine on a
//! single-threaded tokio runtime, with the exporter's limits around it.
//!
//! Why hyper: the hand-written server before it gave every connection a
//! thread and a request slot from `accept` on, so 100 clients that sent
//! nothing kept Prometheus out (503). hyper parses heads incrementally for
//! any number of idle connections on one thread, keeps connections alive,
//! answers malformed heads itself (400, 431 for a head too large), and is
//! maintained and fuzzed by people whose job that is; tokio is the runtime
//! it is built and tested with. Only HTTP/1 is compiled in: Prometheus
//! scrapes over HTTP/1.1.
//!
//! The limits, each independent of the others:
//!
//! - at most `MAX_CONNECTIONS` connections are open at once; one more is
//!   answered 503 at once and closed, without the accepting loop waiting;
//! - a connection costs no request slot until a whole request head has
//!   arrived, and the head (of the first request or the next one on a
//!   kept-alive connection) must arrive within `HEAD_TIMEOUT`, however
//!   slowly it trickles in, or the connection is closed;
//! - a head is at most `MAX_HEAD` bytes (else 431) with at most
//!   `MAX_HEADERS` fields; a request body is never read, so hyper closes
//!   a connection whose request had one instead of reading it;
//! - at most `MAX_REQUESTS` requests are in flight, each holding its slot
//!   until the last piece of its response is handed to the socket (so the
//!   responses held in memory are bounded too); one that finds no slot
//!   within `SLOT_WAIT` gets 503;
//! - each write must make progress within `WRITE_TIMEOUT` (a client that
//!   stops reading), else the connection is closed.
//!
//! The listen address is a `SocketAddr`: nothing here looks a name up.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// Open connections at once: Prometheus servers keep one each, so this is
/// room for many plus curl, and for a crowd of idle clients besides.
pub const MAX_CONNECTIONS: usize = 256;
/// Requests being answered at once; computing a scrape is serialised
/// beyond this (see `Exporter::scrape`).
pub const MAX_REQUESTS: usize = 8;
/// Time a request waits for a slot before it is answered 503.
const SLOT_WAIT: Duration = Duration::from_secs(5);
/// Time allowed for a whole request head to arrive.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Request line plus headers (hyper's smallest buffer); Prometheus sends a
/// few hundred bytes.
const MAX_HEAD: usize = 8 * 1024;
const MAX_HEADERS: usize = 64;
/// Time allowed for each write of a response to make progress.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// A response body goes to hyper in pieces of this size, so that its
/// request slot is held until all but the last piece has been written.
const PIECE: usize = 64 * 1024;

/// The parts of a request the exporter looks at.
pub struct Request {
    pub method: hyper::Method,
    /// The path, without any query string.
    pub path: String,
    /// Every `Accept` header, joined with commas.
    pub accept: String,
}

/// What the exporter answers: status, headers, body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, &'static str)>,
    pub body: Vec<u8>,
}

/// Something that answers requests; `answer` runs on a blocking thread
/// (it reads files).
pub trait Answerer: Send + Sync + 'static {
    fn answer(&self, request: &Request) -> Answer;
}

/// Runs the server on `listener` forever, on the calling thread.
pub fn serve(listener: std::net::TcpListener, answerer: Arc<dyn Answerer>) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        // Answers wait on one lock for a scrape; two threads let a health
        // check be answered while a scrape is computed.
        .max_blocking_threads(2)
        .build()?;
    runtime.block_on(accept_loop(listener, answerer))
}

async fn accept_loop(
    listener: std::net::TcpListener,
    answerer: Arc<dyn Answerer>,
) -> io::Result<()> {
    let listener = TcpListener::from_std(listener)?;
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let requests = Arc::new(Semaphore::new(MAX_REQUESTS));
    loop {
        // Accept errors (EMFILE, a connection reset before accept) are the
        // client's or passing: keep serving the others, without spinning
        // on one that lasts.
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let Ok(connection) = Arc::clone(&connections).try_acquire_owned() else {
            refuse_busy(&stream);
            continue;
        };
        let answerer = Arc::clone(&answerer);
        let requests = Arc::clone(&requests);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                respond(Arc::clone(&answerer), Arc::clone(&requests), request)
            });
            let io = TokioIo::new(WriteTimeout::new(stream));
            // A connection that ends in an error (a reset, a timeout, a
            // malformed head already answered) has nothing left to say.
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(MAX_HEAD)
                .max_headers(MAX_HEADERS)
                .keep_alive(true)
                .serve_connection(io, service)
                .await;
            drop(connection);
        });
    }
}

/// A 503 written without waiting: a fresh socket's send buffer takes it
/// whole, and if it does not the client loses only the explanation.
fn refuse_busy(stream: &TcpStream) {
    let _ = stream.try_write(
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
}

/// Answers one request whose head has arrived: takes a request slot, has
/// the answerer compute the answer on a blocking thread.
async fn respond(
    answerer: Arc<dyn Answerer>,
    requests: Arc<Semaphore>,
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Pieces>, Infallible> {
    let Ok(Ok(slot)) = tokio::time::timeout(SLOT_WAIT, requests.acquire_owned()).await else {
        let busy = Answer {
            status: 503,
            headers: vec![("Retry-After", "1")],
            body: Vec::new(),
        };
        return Ok(response(busy, None));
    };
    let accept: Vec<&str> = request
        .headers()
        .get_all(hyper::header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    let parts = Request {
        method: request.method().clone(),
        path: request.uri().path().to_string(),
        accept: accept.join(","),
    };
    let answer = tokio::task::spawn_blocking(move || answerer.answer(&parts))
        .await
        .unwrap_or_else(|_| Answer {
            status: 500,
            headers: Vec::new(),
            body: b"the scrape failed\n".to_vec(),
        });
    Ok(response(answer, Some(slot)))
}

fn response(answer: Answer, slot: Option<OwnedSemaphorePermit>) -> hyper::Response<Pieces> {
    let mut response = hyper::Response::new(Pieces {
        rest: Bytes::from(answer.body),
        slot,
    });
    *response.status_mut() = hyper::StatusCode::from_u16(answer.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in answer.headers {
        response
            .headers_mut()
            .append(name, hyper::header::HeaderValue::from_static(value));
    }
    response
}

/// A response body handed out `PIECE` bytes at a time, holding its
/// request slot until the last piece is taken. Its exact length is known,
/// so hyper sends `Content-Length` (also for `HEAD`, whose body it drops).
pub struct Pieces {
    rest: Bytes,
    slot: Option<OwnedSemaphorePermit>,
}

impl Body for Pieces {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let length = self.rest.len().min(PIECE);
        let piece = self.rest.split_to(length);
        if self.rest.is_empty() {
            self.slot = None;
        }
        Poll::Ready((!piece.is_empty()).then(|| Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.rest.len() as u64)
    }
}

/// A TCP stream whose writes fail with `TimedOut` when one makes no
/// progress for `WRITE_TIMEOUT`; hyper has no write timeout of its own.
struct WriteTimeout {
    stream: TcpStream,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl WriteTimeout {
    fn new(stream: TcpStream) -> WriteTimeout {
        WriteTimeout {
            stream,
            stalled: None,
        }
    }

    /// Passes `ready` on, arming the timer while a write waits and
    /// disarming it when one goes through.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        ready: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if ready.is_ready() {
            self.stalled = None;
            return ready;
        }
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(WRITE_TIMEOUT)));
        ready!(stalled.as_mut().poll(cx));
        Poll::Ready(Err(io::ErrorKind::TimedOut.into()))
    }
}

impl AsyncRead for WriteTimeout {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteTimeout {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let ready = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.watch(cx, ready)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let ready = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.watch(cx, ready)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
