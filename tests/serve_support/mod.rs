//! Helpers for tests/serve.rs: a raw HTTP/1.1 client (so malformed requests
//! can be sent as they are), `serve` started with the DaemonSet's own
//! arguments, a real Prometheus server and its query API, and synthetic
//! dumps written with the preload library's own writer.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fadvise_shim_core::call::Call;
use fadvise_shim_core::dump::{write_dump, Header, NoBudgets, Reason};
use fadvise_shim_core::histogram::index_of;
use fadvise_shim_core::stats::Snapshot;
use serde_json::Value;

use crate::common::{clean_command, cli, poll, Running};

/// The DaemonSet in deploy/exporter.yaml.
pub fn daemonset() -> serde_yaml::Value {
    let documents = yaml_documents("deploy/exporter.yaml");
    documents
        .into_iter()
        .find(|document| document["kind"] == "DaemonSet")
        .expect("a DaemonSet in deploy/exporter.yaml")
}

/// Every document of a YAML file in the repository.
pub fn yaml_documents(path: &str) -> Vec<serde_yaml::Value> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|error| panic!("{path}: {error}"));
    let mut documents = vec![String::new()];
    for line in text.lines() {
        if line == "---" {
            documents.push(String::new());
        } else {
            let last = documents.last_mut().unwrap();
            last.push_str(line);
            last.push('\n');
        }
    }
    documents
        .iter()
        .map(|document| {
            serde_yaml::from_str(document).unwrap_or_else(|error| panic!("{path}: {error}"))
        })
        .collect()
}

/// The exporter container's arguments from the DaemonSet, with its listen
/// address and directory replaced by the test's: every test runs `serve`
/// exactly as deployed otherwise.
pub fn deployed_args(listen: &str, dir: &Path) -> Vec<String> {
    let container = &daemonset()["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<String> = container["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .map(|arg| arg.as_str().expect("string argument").to_string())
        .collect();
    assert_eq!(args.len(), 4, "{args:?}");
    assert_eq!((args[0].as_str(), args[1].as_str()), ("serve", "--listen"));
    vec![
        args[0].clone(),
        args[1].clone(),
        listen.to_string(),
        dir.to_str().unwrap().to_string(),
    ]
}

/// A running `fadvise-shim serve`.
pub struct Serve {
    pub address: SocketAddr,
    /// Dropping it stops serve.
    _process: Running,
}

impl Serve {
    /// Starts `serve` on `listen` (port 0: any free port) for `dir`.
    pub fn start(listen: &str, dir: &Path) -> Serve {
        let mut command = clean_command(cli());
        command.args(deployed_args(listen, dir));
        let mut process = Running::start(&mut command);
        let line = process.wait_for_line(Duration::from_secs(10), |line| {
            line.starts_with("listening on ")
        });
        let address = line
            .strip_prefix("listening on http://")
            .and_then(|rest| rest.strip_suffix("/metrics"))
            .unwrap_or_else(|| panic!("{line}"))
            .parse()
            .unwrap();
        Serve {
            address,
            _process: process,
        }
    }

    /// The peak resident memory of serve so far, in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self._process.pid())).unwrap();
        let line = status
            .lines()
            .find(|line| line.starts_with("VmHWM:"))
            .unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    pub fn metrics(&self, accept: Option<&str>) -> Response {
        let mut request = "GET /metrics HTTP/1.1\r\nHost: test\r\n".to_string();
        if let Some(accept) = accept {
            request.push_str(&format!("Accept: {accept}\r\n"));
        }
        request.push_str("\r\n");
        let response = exchange(self.address, request.as_bytes());
        assert_eq!(response.status, 200, "{response:?}");
        response
    }
}

/// An HTTP response as read off the wire.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Sends `request` as it is on a new connection and reads one response:
/// its head, then `Content-Length` bytes of body (none for `HEAD`), or
/// up to the end of the connection when there is no length. The
/// connection may stay open after (keep-alive). Status 0: the connection
/// closed with no response.
pub fn exchange(address: SocketAddr, request: &[u8]) -> Response {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // The server may answer and close before it has read it all.
    let _ = stream.write_all(request);
    read_response(&mut stream, request.starts_with(b"HEAD "))
}

/// Reads one response off `stream` (see `exchange`).
pub fn read_response(stream: &mut TcpStream, to_head: bool) -> Response {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut wanted = None;
    loop {
        if wanted.is_none() {
            if let Some(end) = bytes.windows(4).position(|window| window == b"\r\n\r\n") {
                let response = parse_response(&bytes);
                let length = response
                    .header("content-length")
                    .and_then(|l| l.parse().ok());
                wanted = Some(match (to_head, length) {
                    (true, _) => Some(end + 4),
                    (false, length) => length.map(|length: usize| end + 4 + length),
                });
            }
        }
        if let Some(Some(total)) = wanted {
            if bytes.len() >= total {
                break;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(read) => bytes.extend_from_slice(&chunk[..read]),
        }
    }
    parse_response(&bytes)
}

pub fn parse_response(bytes: &[u8]) -> Response {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    Response {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// A port free now on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Prometheus server (Debian's /usr/bin/prometheus) scraping `target`
/// every second, with its storage in `dir`.
pub struct Prometheus {
    pub address: SocketAddr,
    _process: Running,
}

impl Prometheus {
    pub fn start(dir: &Path, target: SocketAddr) -> Prometheus {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: fadvise-shim\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let address: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut command = clean_command("prometheus");
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"));
        let mut process = Running::start(&mut command);
        let ready = poll(Duration::from_secs(20), || {
            let stream = TcpStream::connect(address).ok()?;
            drop(stream);
            let response = exchange(
                address,
                b"GET /-/ready HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n",
            );
            (response.status == 200).then_some(())
        });
        assert!(
            ready.is_some() && process.is_alive(),
            "Prometheus did not start:\n{}",
            process.stderr_text()
        );
        Prometheus {
            address,
            _process: process,
        }
    }

    /// The result of an instant query (`data.result`).
    pub fn query(&self, promql: &str) -> Vec<Value> {
        self.api(&format!("/api/v1/query?query={}", percent_encode(promql)))["result"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// `data` of an API call.
    pub fn api(&self, path_and_query: &str) -> Value {
        let request =
            format!("GET {path_and_query} HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n");
        let response = exchange(self.address, request.as_bytes());
        assert_eq!(response.status, 200, "{path_and_query}: {response:?}");
        let body = dechunk(&response);
        let value: Value =
            serde_json::from_str(&body).unwrap_or_else(|error| panic!("{error}: {body}"));
        assert_eq!(value["status"], "success", "{value}");
        value["data"].clone()
    }

    /// Polls `promql` until `wanted` holds for its result by label, or
    /// fails the test after `timeout` with the last result.
    pub fn wait_for(
        &self,
        promql: &str,
        timeout: Duration,
        wanted: impl Fn(&[(String, f64)]) -> bool,
    ) -> Vec<(String, f64)> {
        let deadline = Instant::now() + timeout;
        loop {
            let result = by_label(&self.query(promql));
            if wanted(&result) {
                return result;
            }
            assert!(
                Instant::now() < deadline,
                "{promql}: still {result:?} after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// An instant vector as (labels as Prometheus prints them, value), sorted.
pub fn by_label(result: &[Value]) -> Vec<(String, f64)> {
    let mut rows: Vec<(String, f64)> = result
        .iter()
        .map(|sample| {
            let labels = sample["metric"].to_string();
            let value = sample["value"][1].as_str().unwrap().parse().unwrap();
            (labels, value)
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

/// Prometheus answers its API in chunked transfer encoding.
fn dechunk(response: &Response) -> String {
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|value| value.eq_ignore_ascii_case("chunked"));
    if !chunked {
        return response.body.clone();
    }
    let mut body = String::new();
    let mut rest = response.body.as_str();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        body.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
    body
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// `promtool ARGS` with `stdin`; its status and output.
pub fn promtool(args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (scripts/setup.sh installs Debian's prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// One call: passed latencies as (ns, times), dropped, limited, errors.
pub type SyntheticCall<'a> = (Call, &'a [(u64, u64)], u64, u64, u64);

/// A synthetic process for a dump: identity lines the reader keeps as
/// `extra`, and per call (passed latencies as (ns, times), dropped,
/// limited, errors).
pub struct Synthetic<'a> {
    pub exe: &'a str,
    pub pid: u32,
    pub extra: &'a [(&'a str, &'a str)],
    pub calls: &'a [SyntheticCall<'a>],
}

/// Writes `process` as `<dir>/<exe name>.<pid>.dump` with the library's
/// writer, its `extra` lines after the first.
pub fn write_synthetic(dir: &Path, process: &Synthetic) -> PathBuf {
    let mut snapshot = Snapshot::default();
    for &(call, latencies, dropped, limited, errors) in process.calls {
        let stats = snapshot.call_mut(call);
        for &(ns, times) in latencies {
            stats.buckets[index_of(ns)] += times;
        }
        stats.dropped = dropped;
        stats.limited = limited;
        stats.errors = errors;
    }
    let header = Header {
        origin: fadvise_shim_core::origin::OriginRef {
            pid: process.pid,
            exe: process.exe.as_bytes(),
            ..Default::default()
        },
        ppid: 1,
        policy: b"built-in",
        signal: "SIGUSR1",
        reason: Reason::Exit,
        unix_time: 1_764_000_000,
        budgets: &NoBudgets,
        processes: 1,
        absorbed: &[],
    };
    let mut text = Vec::new();
    write_dump(&mut text, &header, &snapshot);
    let text = String::from_utf8(text).unwrap();
    let (first, rest) = text.split_once('\n').unwrap();
    let extra: String = process
        .extra
        .iter()
        .map(|(key, value)| format!("{key} {value}\n"))
        .collect();
    // Cut, as a file name cannot hold every exe name a dump can.
    let name: String = process
        .exe
        .rsplit('/')
        .next()
        .unwrap()
        .chars()
        .take(100)
        .collect();
    let file = dir.join(format!("{name}.{}.dump", process.pid));
    std::fs::write(&file, format!("{first}\n{extra}{rest}")).unwrap();
    file
}
