//! `fadvise-shim serve` from the outside: a real Prometheus server scrapes
//! it while real programs run under the shim, and its query API must tell
//! exactly the calls the programs made; promtool checks the exposition and
//! the example rules; malformed and slow clients get 4xx or a closed
//! connection while serve keeps answering; the deploy manifests parse as
//! the Kubernetes objects the tests run.

mod common;
mod serve_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{compile_c, run, Scratch, Shim, TIMEOUT};
use fadvise_shim_core::call::Call;
use serde_json::Value;
use serve_support::*;

const PASS_ALL: &str = "[dump]\non_exit = true\n";
const DROP_ALL: &str = "[[rule]]\ncall = \"*\"\naction = \"drop\"\n";
const POD: &str = "0f3c5a2e-8b1d-4c6e-9a7f-112233445566";

/// Runs tests/serve_support/calls.c (as `exe`) under `fadvise-shim run`
/// with `policy`, its dump going to the scratch dump directory.
fn workload(scratch: &Scratch, exe: &str, policy: &str, counts: [u32; 3]) {
    let program = compile_c("serve_support", "calls", exe, &[]);
    let mut command = common::clean_command(common::cli());
    command
        .arg("run")
        .arg("--policy")
        .arg(scratch.policy_file(policy))
        .arg("--dump-dir")
        .arg(scratch.dump_dir())
        .arg("--")
        .arg(program)
        .arg(scratch.file(&format!("{exe}.data")))
        .args(counts.map(|count| count.to_string()));
    let finished = run(&mut command, TIMEOUT);
    finished.assert_success(exe);
    // The program's own account of what it did.
    let [fadvise, fsync, bad] = counts;
    assert!(
        finished.stdout.contains(&format!(
            "fadvise={fadvise} fsync={fsync} bad={bad} failed="
        )),
        "{finished}"
    );
}

fn value_of(rows: &[(String, f64)], label: &str) -> Option<f64> {
    rows.iter()
        .find(|(labels, _)| labels.contains(label))
        .map(|(_, value)| *value)
}

#[test]
fn prometheus_sees_exactly_the_calls_made_and_no_counter_resets() {
    let scratch = Scratch::new();
    workload(&scratch, "serve_calls", PASS_ALL, [300, 40, 5]);
    let serve = Serve::start("127.0.0.1:0", &scratch.dump_dir());
    let prometheus = Prometheus::start(scratch.path(), serve.address);

    let by_call = "sum by (call) (fadvise_shim_calls_total)";
    prometheus.wait_for(by_call, Duration::from_secs(15), |rows| {
        value_of(rows, "posix_fadvise") == Some(300.0) && value_of(rows, "fsync") == Some(45.0)
    });
    // A second program, every call dropped.
    workload(&scratch, "serve_dropper", DROP_ALL, [200, 10, 0]);
    prometheus.wait_for(by_call, Duration::from_secs(10), |rows| {
        value_of(rows, "posix_fadvise") == Some(500.0) && value_of(rows, "fsync") == Some(55.0)
    });
    let by_verdict = by_label(&prometheus.query("sum by (verdict) (fadvise_shim_calls_total)"));
    assert_eq!(
        value_of(&by_verdict, "passed"),
        Some(345.0),
        "{by_verdict:?}"
    );
    assert_eq!(
        value_of(&by_verdict, "dropped"),
        Some(210.0),
        "{by_verdict:?}"
    );
    assert_eq!(
        value_of(&by_verdict, "limited"),
        Some(0.0),
        "{by_verdict:?}"
    );
    // The 5 fsyncs on a closed descriptor failed in the kernel.
    let errors = by_label(&prometheus.query("sum by (call) (fadvise_shim_call_errors_total)"));
    assert_eq!(value_of(&errors, "fsync"), Some(5.0), "{errors:?}");
    assert_eq!(value_of(&errors, "posix_fadvise"), Some(0.0), "{errors:?}");

    // The p99 Prometheus computes from the buckets falls in the same
    // bucket (give or take one) as the p99 of `report --format json`.
    let report = common::run(
        common::clean_command(common::cli())
            .args(["report", "--format", "json"])
            .arg(scratch.dump_dir()),
        TIMEOUT,
    );
    let json: Value = serde_json::from_str(&report.stdout).unwrap();
    let exact_p99 = json["calls"]["posix_fadvise"]["latency_ns"]["p99"]
        .as_u64()
        .unwrap() as f64
        / 1e9;
    let quantile = prometheus.query(
        "histogram_quantile(0.99, sum by (le) (fadvise_shim_call_duration_seconds_bucket{call=\"posix_fadvise\"}))",
    );
    let estimated: f64 = quantile[0]["value"][1].as_str().unwrap().parse().unwrap();
    let bucket = |seconds: f64| {
        BOUNDS_S
            .iter()
            .position(|&bound| seconds <= bound * (1.0 + 1e-9))
    };
    let (exact, estimate) = (bucket(exact_p99), bucket(estimated));
    assert!(
        exact.zip(estimate).is_some_and(|(a, b)| a.abs_diff(b) <= 1),
        "p99 {exact_p99} s (bucket {exact:?}) vs histogram_quantile {estimated} s (bucket {estimate:?})"
    );

    // Prometheus parsed OpenMetrics (it asks for it first): only that
    // format carries the `# UNIT` it reports.
    let metadata = prometheus.api("/api/v1/metadata?metric=fadvise_shim_call_duration_seconds");
    assert_eq!(
        metadata["fadvise_shim_call_duration_seconds"][0]["unit"], "seconds",
        "{metadata}"
    );

    // A restart of serve on the same port: the counts go on, no reset.
    let port = serve.address.port();
    drop(serve);
    let restarted = Serve::start(&format!("127.0.0.1:{port}"), &scratch.dump_dir());
    let scrapes = "count_over_time(up{job=\"fadvise-shim\"}[1m])";
    let before = by_label(&prometheus.query(scrapes))[0].1;
    prometheus.wait_for(scrapes, Duration::from_secs(10), |rows| {
        rows.first().is_some_and(|row| row.1 >= before + 2.0)
    });
    prometheus.wait_for("up", Duration::from_secs(5), |rows| {
        rows.first().is_some_and(|row| row.1 == 1.0)
    });
    let resets = by_label(&prometheus.query("resets(fadvise_shim_calls_total[5m])"));
    assert!(!resets.is_empty());
    assert!(resets.iter().all(|(_, value)| *value == 0.0), "{resets:?}");
    let totals = by_label(&prometheus.query(by_call));
    assert_eq!(
        value_of(&totals, "posix_fadvise"),
        Some(500.0),
        "{totals:?}"
    );
    drop(restarted);
}

/// The `le` bounds in seconds, as served.
const BOUNDS_S: [f64; 15] = [
    0.000000255,
    0.000001023,
    0.000004095,
    0.000016383,
    0.000065535,
    0.000262143,
    0.001048575,
    0.004194303,
    0.016777215,
    0.067108863,
    0.268435455,
    1.073741823,
    4.294967295,
    17.179869183,
    f64::INFINITY,
];

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .map(|line| line.rsplit(' ').next().unwrap().parse().unwrap())
}

#[test]
fn both_formats_pass_promtool_with_bounded_labels_and_exact_buckets() {
    let scratch = Scratch::new();
    let container = "c".repeat(64);
    let long_exe = format!("/usr/bin/{}", "w".repeat(400));
    write_synthetic(
        &scratch.dump_dir(),
        &Synthetic {
            exe: "/usr/bin/dd",
            pid: 10,
            extra: &[("container_id", &container), ("pod_uid", POD)],
            calls: &[(
                Call::PosixFadvise,
                &[(255, 7), (256, 3), (5_000_000, 1)],
                2,
                1,
                0,
            )],
        },
    );
    // A pod's own subdirectory: its UID comes from there, whatever the
    // file claims; a hostile claim is cleaned and cut to 64 characters.
    let pod_dir = scratch.dump_dir().join(POD);
    std::fs::create_dir(&pod_dir).unwrap();
    let hostile = format!("evil\"\\\u{1b}{}", "x".repeat(100));
    write_synthetic(
        &pod_dir,
        &Synthetic {
            exe: &long_exe,
            pid: 11,
            extra: &[("container_id", &hostile), ("pod_uid", "someone-else")],
            calls: &[(Call::Fsync, &[(1_000, 2)], 0, 0, 1)],
        },
    );
    let serve = Serve::start("127.0.0.1:0", &scratch.dump_dir());

    let text = serve.metrics(None);
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let (clean, output) = promtool(&["check", "metrics"], &text.body);
    assert!(clean, "{output}\n{}", text.body);
    let body = &text.body;
    let dd =
        format!("call=\"posix_fadvise\",exe=\"dd\",container_id=\"{container}\",pod_uid=\"{POD}\"");
    let calls = |verdict: &str| {
        sample(
            body,
            &format!("fadvise_shim_calls_total{{{dd},verdict=\"{verdict}\"}}"),
        )
    };
    assert_eq!(
        (calls("passed"), calls("dropped"), calls("limited")),
        (Some(11.0), Some(2.0), Some(1.0)),
        "{body}"
    );
    // 255 ns is the top of an HDR bucket and of the first `le`; 256 ns is
    // above both.
    let bucket = |le: &str| {
        sample(
            body,
            &format!("fadvise_shim_call_duration_seconds_bucket{{{dd},le=\"{le}\"}}"),
        )
    };
    assert_eq!(bucket("0.000000255"), Some(7.0), "{body}");
    assert_eq!(bucket("0.000001023"), Some(10.0), "{body}");
    assert_eq!(bucket("+Inf"), Some(11.0), "{body}");
    // The dump reader already replaced the control byte (`?`); the label is
    // escaped and cut to 64 bytes.
    let escaped = format!("container_id=\"evil\\\"\\\\?{}\"", "x".repeat(57));
    let long = format!("exe=\"{}\"", "w".repeat(255));
    let fsync = format!(
        "fadvise_shim_call_errors_total{{call=\"fsync\",{long},{escaped},pod_uid=\"{POD}\"}}"
    );
    assert_eq!(sample(body, &fsync), Some(1.0), "{body}");
    assert!(!body.contains("someone-else"), "{body}");
    assert_eq!(sample(body, "fadvise_shim_unreadable_files"), Some(0.0));
    assert!(!body.contains("pid"), "{body}");

    let openmetrics = serve.metrics(Some("application/openmetrics-text; version=1.0.0"));
    assert_eq!(
        openmetrics.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(
        openmetrics.body.ends_with("\n# EOF\n"),
        "{}",
        openmetrics.body
    );
    assert!(openmetrics
        .body
        .contains("# TYPE fadvise_shim_calls counter\n"));
    assert!(openmetrics
        .body
        .contains("# UNIT fadvise_shim_call_duration_seconds seconds\n"));
    // The same samples in both formats.
    let samples = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .map(String::from)
            .collect()
    };
    assert_eq!(samples(&openmetrics.body), samples(body));
}

#[test]
fn served_counters_never_go_down_when_files_vanish() {
    let scratch = Scratch::new();
    let dir = scratch.dump_dir();
    let write = |pid, times| {
        let latencies = [(1_000, times)];
        let calls = [(Call::Fsync, &latencies[..], 0, 0, 0)];
        let process = Synthetic {
            exe: "/bin/app",
            pid,
            extra: &[],
            calls: &calls,
        };
        write_synthetic(&dir, &process)
    };
    write(1, 5);
    let second = write(2, 7);
    let serve = Serve::start("127.0.0.1:0", &dir);
    let passed = "fadvise_shim_calls_total{call=\"fsync\",exe=\"app\",verdict=\"passed\"}";
    let count = || sample(&serve.metrics(None).body, passed);
    assert_eq!(count(), Some(12.0));
    // Mid-compaction a process's counts can be missing for a scrape.
    std::fs::remove_file(&second).unwrap();
    assert_eq!(count(), Some(12.0));
    write(2, 9);
    assert_eq!(count(), Some(14.0));
    // A broken file is counted, never fatal.
    std::fs::write(dir.join("broken.dump"), "garbage").unwrap();
    let body = serve.metrics(None).body;
    assert_eq!(
        sample(&body, "fadvise_shim_unreadable_files"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(sample(&body, passed), Some(14.0));
}

#[test]
fn routes_methods_and_malformed_requests() {
    let scratch = Scratch::new();
    let serve = Serve::start("127.0.0.1:0", &scratch.dump_dir());
    let send = |request: &[u8]| exchange(serve.address, request);
    let health = send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let index = send(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(index.status, 200);
    assert!(index.body.contains("<a href=\"/metrics\">"), "{index:?}");
    assert_eq!(send(b"GET /nope HTTP/1.1\r\n\r\n").status, 404);
    let post = send(b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(
        (post.status, post.header("allow")),
        (405, Some("GET, HEAD"))
    );
    let head = send(b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    for garbage in [
        &b"\x00\x01\x02garbage\r\n\r\n"[..],
        b"GET /metrics\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET /metrics HTTP/9.9\r\n\r\n",
    ] {
        assert_eq!(send(garbage).status, 400, "{garbage:?}");
    }
    let mut huge = b"GET /metrics HTTP/1.1\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 64 * 1024));
    huge.extend(b"\r\n\r\n");
    assert_eq!(send(&huge).status, 431);
    // A client that leaves mid-request costs nothing.
    drop(TcpStream::connect(serve.address).unwrap());
    let mut partial = TcpStream::connect(serve.address).unwrap();
    partial.write_all(b"GET /metr").unwrap();
    drop(partial);
    // Clients that reset the connection (SO_LINGER 0) before the answer.
    for _ in 0..20 {
        let stream = TcpStream::connect(serve.address).unwrap();
        (&stream)
            .write_all(b"GET /metrics HTTP/1.1\r\n\r\n")
            .unwrap();
        reset_on_close(&stream);
    }
    assert_eq!(send(b"GET /healthz HTTP/1.1\r\n\r\n").status, 200);
}

/// Makes dropping `stream` send a reset instead of a FIN.
fn reset_on_close(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `linger` is a valid `struct linger` that outlives the call,
    // and its size is passed; the descriptor is the stream's own, open.
    let result = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(result, 0);
}

#[test]
fn an_address_it_cannot_bind_is_a_one_line_failure() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    for address in [taken.as_str(), "not-an-address", "192.0.2.1:9808"] {
        let finished = run(
            common::clean_command(common::cli()).args(["serve", "--listen", address]),
            TIMEOUT,
        );
        assert_eq!(finished.status.code(), Some(1), "{address}: {finished}");
        assert!(
            finished
                .stderr
                .starts_with(&format!("fadvise-shim: listen on {address}: "))
                && finished.stderr.lines().count() == 1,
            "{finished}"
        );
    }
}

#[test]
fn silent_and_trickling_clients_are_cut_off_and_others_still_served() {
    let scratch = Scratch::new();
    let serve = Serve::start("127.0.0.1:0", &scratch.dump_dir());
    let started = Instant::now();
    let mut silent = TcpStream::connect(serve.address).unwrap();
    let mut trickling = TcpStream::connect(serve.address).unwrap();
    let address = serve.address;
    let trickle = std::thread::spawn(move || {
        // One byte a second: never a whole request within the deadline.
        for byte in b"GET /metrics HTTP/1.1\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if trickling.write_all(&[*byte]).is_err() {
                return started.elapsed();
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        panic!("the trickling client was never cut off ({address})");
    });
    // Meanwhile, a scrape is answered at once.
    let scrape = Instant::now();
    assert_eq!(serve.metrics(None).status, 200);
    assert!(
        scrape.elapsed() < Duration::from_secs(2),
        "{:?}",
        scrape.elapsed()
    );
    silent
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buffer = [0u8; 16];
    let read = silent.read(&mut buffer);
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let cut = started.elapsed();
    assert!(cut < Duration::from_secs(15), "silent client held {cut:?}");
    let trickled = trickle.join().unwrap();
    assert!(
        trickled < Duration::from_secs(15),
        "trickling client held {trickled:?}"
    );

    // Past the cap on open connections (256) new clients get 503; when
    // the idle ones go, serve answers again.
    let idle: Vec<TcpStream> = (0..260)
        .map(|_| TcpStream::connect(serve.address).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let busy = exchange(serve.address, b"GET /healthz HTTP/1.1\r\n\r\n");
    assert_eq!(busy.status, 503, "{busy:?}");
    drop(idle);
    let answered = common::poll(Duration::from_secs(5), || {
        let response = exchange(serve.address, b"GET /healthz HTTP/1.1\r\n\r\n");
        (response.status == 200).then_some(())
    });
    assert!(answered.is_some());
}

#[test]
fn a_hundred_idle_and_slow_clients_and_garbage_leave_scrapes_answered() {
    let scratch = Scratch::new();
    write_synthetic(
        &scratch.dump_dir(),
        &Synthetic {
            exe: "/bin/app",
            pid: 3,
            extra: &[],
            calls: &[(Call::Fsync, &[(1_000, 4)], 0, 0, 0)],
        },
    );
    let serve = Serve::start("127.0.0.1:0", &scratch.dump_dir());
    let address = serve.address;
    // 80 connections that send nothing, 20 that send a request a byte a
    // second, and 20 more that send garbage now and then, all for the
    // whole test.
    let idle: Vec<TcpStream> = (0..80)
        .map(|_| TcpStream::connect(address).unwrap())
        .collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let slow: Vec<_> = (0..40)
        .map(|client| {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let request: &[u8] = if client < 20 {
                    b"GET /metrics HTTP/1.1\r\nHost: slow\r\nX: aaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n"
                } else {
                    b"\x16\x03\x01garbage \x00\xff\r\n\r\n"
                };
                let mut stream = TcpStream::connect(address).unwrap();
                let mut sent = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // Cut off (or answered 400): connect again, as an
                    // attacker would.
                    if stream
                        .write_all(&request[sent % request.len()..][..1])
                        .is_err()
                    {
                        stream = TcpStream::connect(address).unwrap();
                    }
                    sent += 1;
                    std::thread::sleep(Duration::from_secs(1));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let passed = "fadvise_shim_calls_total{call=\"fsync\",exe=\"app\",verdict=\"passed\"}";
    for scrape in 0..5 {
        let started = Instant::now();
        let response = serve.metrics(Some("application/openmetrics-text;version=1.0.0"));
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(2),
            "scrape {scrape} took {took:?}"
        );
        assert_eq!(sample(&response.body, passed), Some(4.0), "{response:?}");
        assert_eq!(
            exchange(address, b"GET /nope HTTP/1.1\r\n\r\n\r\n").status,
            404
        );
        assert_eq!(exchange(address, b"BREW /\r\n\r\n").status, 400);
        std::thread::sleep(Duration::from_secs(2));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for client in slow {
        client.join().unwrap();
    }
    drop(idle);
    assert_eq!(serve.metrics(None).status, 200);
}

#[test]
fn a_kept_alive_connection_serves_requests_one_after_another() {
    let scratch = Scratch::new();
    let serve = Serve::start("127.0.0.1:0", &scratch.dump_dir());
    let mut stream = TcpStream::connect(serve.address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    for path in ["/healthz", "/metrics", "/healthz"] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let response = read_response(&mut stream, false);
        assert_eq!(response.status, 200, "{path}: {response:?}");
    }
    // A body is never read: the connection closes after the answer.
    stream
        .write_all(b"POST /metrics HTTP/1.1\r\nContent-Length: 100000\r\n\r\nabc")
        .unwrap();
    assert_eq!(read_response(&mut stream, false).status, 405);
    let mut rest = Vec::new();
    let closed = stream.read_to_end(&mut rest);
    assert!(closed.is_ok() || rest.is_empty(), "{closed:?} {rest:?}");
}

#[test]
fn example_rules_pass_promtool_check_and_their_unit_tests() {
    let (checked, output) = promtool(&["check", "rules", "deploy/prometheus/rules.yml"], "");
    assert!(checked, "{output}");
    assert!(output.contains("2 rules found"), "{output}");
    let (tested, output) = promtool(&["test", "rules", "deploy/prometheus/rules.test.yml"], "");
    assert!(tested, "{output}");
}

#[test]
fn manifests_are_the_kubernetes_objects_the_tests_run() {
    let daemonset = daemonset();
    assert_eq!(daemonset["apiVersion"], "apps/v1");
    let pod = &daemonset["spec"]["template"];
    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], "9808");
    let spec = &pod["spec"];
    assert_eq!(spec["hostPID"], serde_yaml::Value::Null);
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
    let container = &spec["containers"][0];
    // The arguments the tests run serve with, listen address and directory
    // put back.
    let stats = "/var/run/fadvise-shim/stats";
    let expected = deployed_args("0.0.0.0:9808", std::path::Path::new(stats));
    let args: Vec<&str> = container["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|arg| arg.as_str().unwrap())
        .collect();
    assert_eq!(args, expected);
    assert_eq!(container["ports"][0]["containerPort"], 9808);
    assert_eq!(container["volumeMounts"][0]["mountPath"], stats);
    assert_eq!(container["volumeMounts"][0]["readOnly"], true);
    let volume = &spec["volumes"][0];
    assert_eq!(volume["name"], container["volumeMounts"][0]["name"]);
    assert_eq!(volume["hostPath"]["path"], stats);

    let monitor = yaml_documents("deploy/servicemonitor.yaml");
    let kinds: Vec<&str> = monitor
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Service", "ServiceMonitor"]);
    assert_eq!(monitor[1]["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(
        monitor[0]["spec"]["selector"]["app.kubernetes.io/name"],
        pod["metadata"]["labels"]["app.kubernetes.io/name"]
    );

    // The application: its own subdirectory of the same host directory,
    // by pod UID, at the directory its stats go to.
    let app = yaml_documents("deploy/kubernetes.yaml");
    let deployment = app.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let app_spec = &deployment["spec"]["template"]["spec"];
    let app_container = &app_spec["containers"][0];
    let env = app_container["env"].as_sequence().unwrap();
    let variable = |name: &str| env.iter().find(|v| v["name"] == name).unwrap().clone();
    assert_eq!(
        variable("POD_UID")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.uid"
    );
    let stats_dir = variable("FADVISE_SHIM_STATS_DIR")["value"].clone();
    let mount = app_container["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["subPathExpr"].is_string())
        .unwrap();
    assert_eq!(mount["subPathExpr"], "$(POD_UID)");
    assert_eq!(mount["mountPath"], stats_dir);
    let host = app_spec["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    assert_eq!(host["hostPath"]["path"], stats);
}

/// `cargo test --release --test serve -- --ignored --nocapture scrape_of`:
/// the time of one scrape of 1,000 dumps (BENCHMARKS.md).
#[test]
#[ignore]
fn scrape_of_a_thousand_dumps() {
    let scratch = Scratch::new();
    let dir = scratch.dump_dir();
    let containers: Vec<String> = (0..50).map(|i| format!("{i:064x}")).collect();
    for pid in 0..1000u32 {
        let exe = format!("/usr/bin/app{}", pid % 20);
        let container = &containers[pid as usize % containers.len()];
        write_synthetic(
            &dir,
            &Synthetic {
                exe: &exe,
                pid: 1000 + pid,
                extra: &[("container_id", container)],
                calls: &[
                    (
                        Call::PosixFadvise,
                        &[(300, 1000), (2_000, 50), (40_000, 3)],
                        10,
                        0,
                        0,
                    ),
                    (Call::Fsync, &[(800_000, 100), (5_000_000, 10)], 0, 5, 1),
                    (Call::Fdatasync, &[(300_000, 20)], 0, 0, 0),
                ],
            },
        );
    }
    let serve = Serve::start("127.0.0.1:0", &dir);
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..7 {
        let start = Instant::now();
        bytes = serve.metrics(None).body.len();
        times.push(start.elapsed());
    }
    times.sort();
    eprintln!(
        "scrape of 1000 dumps: median {:?}, min {:?}, max {:?}, {bytes} bytes, peak RSS {} KiB",
        times[3],
        times[0],
        times[6],
        serve.peak_rss_kib()
    );
    assert!(times[3] < Duration::from_secs(1), "{times:?}");
}

/// Live statistics as the node sees them: processes that exit, one that is
/// `SIGKILL`ed (its file retired by serve's own compaction), a restart of
/// serve; Prometheus sums to exactly the calls made, and never sees a
/// counter reset.
#[test]
fn prometheus_sees_live_and_dead_processes_exactly_across_compaction_and_restart() {
    let scratch = Scratch::new();
    let stats = scratch.stats_dir();
    let serve = Serve::start("127.0.0.1:0", &stats);
    let prometheus = Prometheus::start(scratch.path(), serve.address);
    let program = compile_c("serve_support", "calls", "serve_live", &[]);
    for _ in 0..20 {
        let finished = run(
            scratch
                .command(&program, Shim::Default)
                .arg(scratch.file("live.data"))
                .args(["10", "2", "0"]),
            TIMEOUT,
        );
        finished.assert_success("a short process");
    }
    let killed_program = compile_c("c_live", "calls", "killed", &[]);
    let mut killed = common::Running::start(
        scratch
            .command(&killed_program, Shim::Default)
            .arg(scratch.file("killed.data"))
            .args(["77", "wait"]),
    );
    killed.wait_for_line(TIMEOUT, |line| line == "ready");
    let by_call = "sum by (call) (fadvise_shim_calls_total)";
    prometheus.wait_for(by_call, Duration::from_secs(15), |rows| {
        value_of(rows, "posix_fadvise") == Some(277.0) && value_of(rows, "fsync") == Some(40.0)
    });
    let live = by_label(&prometheus.query("sum(fadvise_shim_processes)"));
    assert_eq!(live.first().map(|row| row.1), Some(1.0), "{live:?}");
    killed.signal(libc::SIGKILL);
    let _ = killed.wait(TIMEOUT);
    // The next scrapes retire the killed process's file: still 277.
    prometheus.wait_for(
        "sum(fadvise_shim_processes)",
        Duration::from_secs(10),
        |rows| rows.is_empty() || rows[0].1 == 0.0,
    );
    let port = serve.address.port();
    drop(serve);
    let _restarted = Serve::start(&format!("127.0.0.1:{port}"), &stats);
    let scrapes = "count_over_time(up{job=\"fadvise-shim\"}[1m])";
    let before = by_label(&prometheus.query(scrapes))[0].1;
    prometheus.wait_for(scrapes, Duration::from_secs(10), |rows| {
        rows.first().is_some_and(|row| row.1 >= before + 2.0)
    });
    let totals = prometheus.wait_for(by_call, Duration::from_secs(5), |rows| {
        value_of(rows, "posix_fadvise") == Some(277.0)
    });
    assert_eq!(value_of(&totals, "fsync"), Some(40.0), "{totals:?}");
    let resets = by_label(&prometheus.query("resets(fadvise_shim_calls_total[5m])"));
    assert!(!resets.is_empty());
    assert!(resets.iter().all(|(_, value)| *value == 0.0), "{resets:?}");
    assert_eq!(
        std::fs::read_dir(&stats)
            .unwrap()
            .filter(|entry| entry
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".stats"))
            .count(),
        0,
        "every dead file was retired"
    );
}
