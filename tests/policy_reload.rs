//! Live reload, seen from a running program: `ticker` makes one
//! posix_fadvise call every 20 ms under a seccomp filter that answers EPERM
//! to it and prints each verdict with the wall-clock time of the call, so
//! the test sees when a changed policy file took effect: rewritten in place,
//! renamed over, swapped the way Kubernetes config maps do (a `..data`
//! symlink renamed over), or replaced by a bad version (which changes
//! nothing and costs one stderr line). Also: no per-call `stat` (strace),
//! and memory stays bounded over reloads.

mod common;
mod policy_common;

use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{counts, library, run, Running, Scratch, Shim, TIMEOUT};
use fadvise_shim_core::call::Call;
use fadvise_shim_core::policy::ON_EXIT_ENV;
use fadvise_shim_core::policy::POLICY_ENV;
use policy_common::policy_program;

const PASS_ALL: &str = "[[rule]]\ncall = \"*\"\naction = \"pass\"\n";
const DROP_ALL: &str = common::DROP_ALL;
/// What a call that reached the kernel returns under the filter (EPERM),
/// and what a dropped one returns.
const KERNEL: i32 = 1;
const DROPPED: i32 = 0;
/// The bound from a file change to the new verdicts.
const FLIP_WITHIN: Duration = Duration::from_secs(2);

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros() as u64
}

/// A running `ticker` and what it has said.
struct Ticker {
    running: Running,
}

impl Ticker {
    /// Starts `ticker` under the shim with the policy at `policy`, one call
    /// every `interval_us`.
    fn start(scratch: &Scratch, policy: &Path, interval_us: u64) -> Ticker {
        let mut command = scratch.command(policy_program("ticker"), Shim::Off);
        command
            .env("LD_PRELOAD", library())
            .env(POLICY_ENV, policy)
            .arg(scratch.file("data"))
            .arg(interval_us.to_string())
            .arg("0");
        Ticker {
            running: Running::start(&mut command),
        }
    }

    /// The next call: (wall-clock micros, return value).
    fn next(&mut self) -> (u64, i32) {
        let line = self.running.wait_for_line(TIMEOUT, |_| true);
        let parsed = line
            .strip_prefix("t=")
            .and_then(|rest| rest.split_once(" ret="))
            .and_then(|(time, ret)| Some((time.parse().ok()?, ret.parse().ok()?)));
        parsed.unwrap_or_else(|| panic!("unexpected line {line:?}"))
    }

    /// Reads calls for `duration`; every one must have returned `ret`.
    fn assert_steady(&mut self, ret: i32, duration: Duration, what: &str) {
        let until = now_micros() + duration.as_micros() as u64;
        loop {
            let (time, got) = self.next();
            assert_eq!(got, ret, "{what}: call at {time} returned {got}");
            if time >= until {
                return;
            }
        }
    }

    /// Waits for the first call that returns `ret` and returns how long
    /// after `changed_at` (when the change was complete) it was made. Calls
    /// made before `changing_at` (when the change began) must still have the
    /// old verdict.
    fn flip_delay(&mut self, ret: i32, changing_at: u64, changed_at: u64, what: &str) -> Duration {
        let give_up = changed_at + 10 * FLIP_WITHIN.as_micros() as u64;
        loop {
            let (time, got) = self.next();
            if got == ret && time >= changing_at {
                return Duration::from_micros(time.saturating_sub(changed_at));
            }
            assert!(
                got != ret,
                "{what}: a call at {time} returned {got} before the change at {changing_at}"
            );
            assert!(time < give_up, "{what}: no flip to {ret} after 20 s");
        }
    }

    /// Changes the policy with `change`, then asserts that calls flip to
    /// `ret` within the bound and stay there.
    fn expect_flip(&mut self, ret: i32, what: &str, change: impl FnOnce()) {
        let changing_at = now_micros();
        change();
        let changed_at = now_micros();
        let delay = self.flip_delay(ret, changing_at, changed_at, what);
        eprintln!("{what}: flipped {delay:?} after the change");
        assert!(delay <= FLIP_WITHIN, "{what}: flipped after {delay:?}");
        self.assert_steady(ret, Duration::from_millis(300), what);
    }

    fn stderr(&self) -> String {
        self.running.stderr_text()
    }

    fn resident_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.running.pid()))
            .expect("process status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in status")
    }
}

/// Writes `text` into the existing file at `path`, keeping its inode, as
/// an editor that saves in place does.
fn rewrite_in_place(path: &Path, text: &str) {
    let inode = std::fs::metadata(path).expect("policy").ino();
    std::fs::write(path, text).expect("rewrite policy");
    assert_eq!(std::fs::metadata(path).unwrap().ino(), inode);
}

/// Writes `text` to a new file and renames it over `path`, as
/// configuration tools do.
fn rename_over(path: &Path, text: &str) {
    let new = path.with_extension("new");
    std::fs::write(&new, text).expect("write new policy");
    std::fs::rename(&new, path).expect("rename over policy");
}

#[test]
fn verdicts_flip_on_rewrite_and_rename_and_a_bad_version_changes_nothing() {
    let scratch = Scratch::new();
    let policy = scratch.file("policy.toml");
    std::fs::write(&policy, PASS_ALL).unwrap();
    let mut ticker = Ticker::start(&scratch, &policy, 20_000);
    ticker.assert_steady(KERNEL, Duration::from_millis(500), "pass policy");

    ticker.expect_flip(DROPPED, "rewritten in place", || {
        rewrite_in_place(&policy, DROP_ALL)
    });
    ticker.expect_flip(KERNEL, "renamed over", || rename_over(&policy, PASS_ALL));
    assert_eq!(ticker.stderr(), "", "good versions print nothing");

    rename_over(&policy, "[[rule]]\ncall = \"*\"\naction = \"dorp\"\n");
    ticker.assert_steady(KERNEL, Duration::from_millis(2500), "bad version");
    let stderr = ticker.stderr();
    let start = format!("fadvise-shim: {}:3:10: ", policy.display());
    assert!(
        stderr.starts_with(&start) && stderr.lines().count() == 1 && stderr.ends_with('\n'),
        "one line starting with {start:?} expected, got {stderr:?}"
    );

    // A good version after the bad one applies again.
    ticker.expect_flip(DROPPED, "fixed after a bad version", || {
        rewrite_in_place(&policy, DROP_ALL)
    });
    assert_eq!(ticker.stderr(), stderr, "nothing more on stderr");
}

/// A Kubernetes config map volume: `policy.toml -> ..data/policy.toml`,
/// `..data -> ..VERSION`, and an update renames a new `..data` symlink
/// over the old one, then removes the old version's directory.
#[test]
fn verdicts_flip_when_a_config_map_swaps_its_data_symlink() {
    let scratch = Scratch::new();
    let volume = scratch.file("config");
    let version = |name: &str, text: &str| {
        std::fs::create_dir_all(volume.join(name)).unwrap();
        std::fs::write(volume.join(name).join("policy.toml"), text).unwrap();
    };
    version("..2024_01_01", PASS_ALL);
    symlink("..2024_01_01", volume.join("..data")).unwrap();
    symlink("..data/policy.toml", volume.join("policy.toml")).unwrap();
    let swap = |from: &str, to: &str| {
        symlink(to, volume.join("..data_tmp")).unwrap();
        std::fs::rename(volume.join("..data_tmp"), volume.join("..data")).unwrap();
        std::fs::remove_dir_all(volume.join(from)).unwrap();
    };

    let mut ticker = Ticker::start(&scratch, &volume.join("policy.toml"), 20_000);
    ticker.assert_steady(KERNEL, Duration::from_millis(500), "pass policy");
    ticker.expect_flip(DROPPED, "first config map update", || {
        version("..2024_01_02", DROP_ALL);
        swap("..2024_01_01", "..2024_01_02");
    });
    ticker.expect_flip(KERNEL, "second config map update", || {
        version("..2024_01_03", PASS_ALL);
        swap("..2024_01_02", "..2024_01_03");
    });
    assert_eq!(ticker.stderr(), "");
}

/// A program the policy leaves alone, traced for the whole run.
fn traced_ticker(scratch: &Scratch, policy: Option<&Path>, calls: u64) -> (Vec<String>, Duration) {
    let log = scratch.file(if policy.is_some() {
        "shim.strace"
    } else {
        "plain.strace"
    });
    let mut command = scratch.command("strace", Shim::Off);
    command
        .args([
            "-f",
            "-qq",
            "-e",
            "trace=%stat,%lstat,%fstat,fadvise64",
            "-o",
        ])
        .arg(&log);
    if let Some(policy) = policy {
        command
            .arg("-E")
            .arg(format!("LD_PRELOAD={}", library().display()));
        command.env(POLICY_ENV, policy);
    }
    command
        .arg(policy_program("ticker"))
        .arg(scratch.file("data"))
        .arg("200")
        .arg(calls.to_string())
        .arg("nofilter");
    let started = std::time::Instant::now();
    let finished = run(&mut command, TIMEOUT);
    let elapsed = started.elapsed();
    finished.assert_success("traced ticker");
    assert_eq!(finished.stderr, "", "{finished}");
    let traced = std::fs::read_to_string(&log).expect("strace log");
    (traced.lines().map(str::to_owned).collect(), elapsed)
}

#[test]
fn no_stat_per_call() {
    const CALLS: u64 = 10_000;
    let scratch = Scratch::new();
    // A real policy (fsync is not called) so that reload checks happen.
    let policy = scratch.policy_file("[[rule]]\ncall = \"fsync\"\naction = \"drop\"\n");
    let (plain, _) = traced_ticker(&scratch, None, CALLS);
    let (shimmed, elapsed) = traced_ticker(&scratch, Some(&policy), CALLS);
    let fadvise = |lines: &[String]| lines.iter().filter(|l| l.contains("fadvise64(")).count();
    let stats = |lines: &[String]| lines.len() - fadvise(lines);
    assert_eq!(fadvise(&plain), CALLS as usize);
    assert_eq!(fadvise(&shimmed), CALLS as usize, "every call passes");
    let policy_name = policy.to_string_lossy();
    let of_policy = shimmed.iter().filter(|l| l.contains(&*policy_name)).count();
    let seconds = elapsed.as_secs_f64();
    // About one look at the policy file per second, and nothing per call.
    assert!(
        (of_policy as f64) <= seconds + 2.0,
        "{of_policy} stats of the policy in {seconds:.1} s"
    );
    let extra = stats(&shimmed).saturating_sub(stats(&plain));
    // Once a second the policy and the stats file's lock are looked at; at
    // the first call and at exit, the stats and dump directories are walked
    // (a few dozen in all): nothing per call.
    assert!(
        (extra as f64) <= 5.0 * seconds + 40.0,
        "{extra} more stat-family calls with the shim over {CALLS} calls in {seconds:.1} s"
    );
}

/// A policy big enough that keeping every version would show in the
/// resident size at once: `lead` decides posix_fadvise, then 100 path
/// rules for fsync, which `ticker` never calls.
fn big_policy(lead: &str) -> String {
    let mut text = format!("[[rule]]\ncall = \"posix_fadvise\"\naction = \"{lead}\"\n");
    for rule in 0..100 {
        let globs: Vec<String> = (0..4)
            .map(|glob| format!("\"/srv/data{rule:03}/**/*.log{glob}\""))
            .collect();
        text.push_str(&format!(
            "\n[[rule]]\ncall = \"fsync\"\npath = [{}]\naction = \"drop\"\n",
            globs.join(", ")
        ));
    }
    text
}

/// The preload keeps compiled policies in a few fixed slots and frees a
/// version when its slot is reused, so resident memory levels off after
/// the first few reloads however many follow.
#[test]
fn memory_stays_bounded_over_reloads() {
    const RELOADS: usize = 20;
    let scratch = Scratch::new();
    let policy = scratch.file("policy.toml");
    let (drop_text, pass_text) = (big_policy("drop"), big_policy("pass"));
    std::fs::write(&policy, &pass_text).unwrap();
    let mut ticker = Ticker::start(&scratch, &policy, 20_000);
    ticker.assert_steady(KERNEL, Duration::from_millis(300), "first version");
    let mut resident = vec![ticker.resident_kib()];
    for reload in 1..=RELOADS {
        let (text, ret) = if reload % 2 == 1 {
            (&drop_text, DROPPED)
        } else {
            (&pass_text, KERNEL)
        };
        ticker.expect_flip(ret, &format!("reload {reload}"), || {
            rename_over(&policy, text)
        });
        resident.push(ticker.resident_kib());
    }
    assert_eq!(ticker.stderr(), "");
    // What one more compiled version costs, as the first reload showed.
    let one_version = resident[1].saturating_sub(resident[0]).max(512);
    let settled = resident[5];
    let last = resident[RELOADS];
    eprintln!("resident KiB by reload: {resident:?}");
    assert!(
        last <= settled + 2 * one_version,
        "resident KiB by reload: {resident:?} (one version ≈ {one_version} KiB)"
    );
}

/// A policy file that is missing when the program starts costs one stderr
/// line; when it appears later, it applies.
#[test]
fn a_policy_that_appears_later_applies() {
    let scratch = Scratch::new();
    let policy = scratch.file("policy.toml");
    let mut ticker = Ticker::start(&scratch, &policy, 20_000);
    ticker.assert_steady(KERNEL, Duration::from_millis(1500), "no policy file");
    let stderr = ticker.stderr();
    let start = format!("fadvise-shim: {}: ", policy.display());
    assert!(
        stderr.starts_with(&start) && stderr.lines().count() == 1,
        "{stderr:?}"
    );
    ticker.expect_flip(DROPPED, "policy created", || rename_over(&policy, DROP_ALL));
    assert_eq!(ticker.stderr(), stderr, "nothing more on stderr");
}

/// Threads in the middle of calls that look up their file's path while
/// the policy is swapped under them: nothing breaks, every call gets one
/// of the two verdicts, and the counts stay exact.
#[test]
fn threads_calling_through_path_rules_survive_swaps() {
    let scratch = Scratch::new();
    let data_dir = scratch.file("data");
    std::fs::create_dir(&data_dir).unwrap();
    let path_rule = |action: &str| {
        format!(
            "[[rule]]\ncall = \"posix_fadvise\"\npath = [\"{}/**\"]\naction = \"{action}\"\n",
            data_dir.display()
        )
    };
    let policy = scratch.file("policy.toml");
    std::fs::write(&policy, path_rule("drop")).unwrap();
    let mut command = scratch.command(policy_program("rate_loop"), Shim::Off);
    command
        .env("LD_PRELOAD", library())
        .env(POLICY_ENV, &policy)
        .env(ON_EXIT_ENV, "1")
        .arg(data_dir.join("file"))
        .args(["3", "6"]);
    let running = Running::start(&mut command);
    for swap in 0..5 {
        std::thread::sleep(Duration::from_millis(1050));
        let action = if swap % 2 == 0 { "pass" } else { "drop" };
        rename_over(&policy, &path_rule(action));
    }
    let finished = running.wait(TIMEOUT);
    finished.assert_success("rate_loop");
    assert_eq!(finished.stderr, "", "{finished}");
    let cells: Vec<u64> = finished
        .stdout
        .split_whitespace()
        .filter_map(|cell| cell.parse().ok())
        .collect();
    let [calls, kernel, answered, other] = cells[..] else {
        panic!("unexpected output {:?}", finished.stdout);
    };
    assert_eq!(other, 0, "every call got one of the two verdicts");
    assert!(kernel > 0 && answered > 0, "{}", finished.stdout);
    let dumps = scratch.dumps();
    assert_eq!(dumps.len(), 1, "{:?}", scratch.dump_dir_listing());
    let stats = dumps[0].1.stats.call(Call::PosixFadvise);
    assert_eq!(counts(stats), (calls, kernel, answered, 0, kernel));
}

/// Reloads are noticed by dropped calls too, even after the wall clock
/// steps back (NTP, `date -s`): a preloaded `stepback.so` makes `time()`
/// jump back an hour 1.5 s into the run, while every call is dropped.
#[test]
fn reload_is_noticed_after_the_wall_clock_steps_back() {
    let scratch = Scratch::new();
    let step_back = scratch.file("stepback.so");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c_policy/stepback.c");
    let compiled = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-o"])
        .arg(&step_back)
        .arg(&source)
        .status()
        .expect("cc runs");
    assert!(compiled.success(), "compiling {}", source.display());
    let policy = scratch.file("policy.toml");
    std::fs::write(&policy, DROP_ALL).unwrap();
    let mut command = scratch.command(policy_program("ticker"), Shim::Off);
    let preload = format!("{}:{}", step_back.display(), library().display());
    command
        .env("LD_PRELOAD", preload)
        .env(POLICY_ENV, &policy)
        .arg(scratch.file("data"))
        .args(["20000", "0"]);
    let mut ticker = Ticker {
        running: Running::start(&mut command),
    };
    ticker.assert_steady(DROPPED, Duration::from_millis(3000), "drop policy");
    ticker.expect_flip(KERNEL, "renamed over after the step", || {
        rename_over(&policy, PASS_ALL)
    });
}
