//! Default stats directories that cannot be squatted, and readers that say
//! when one was (issue 21, item 5), from outside: another user (`nobody`,
//! through `setpriv`) makes a user's default directory in the world-writable
//! `/dev/shm` first; the user's process says so in one line, and `report`
//! and `top` name the owner and what is lost. A user with a runtime
//! directory keeps the statistics there, where nobody else can make them.
//! (Root's default, `/run/fadvise-shim`, is checked by core's unit tests:
//! a test must not write to this machine's real default.)

mod common;
mod hardening;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use common::{clean_command, cli, library, Scratch};
use fadvise_shim_core::policy::DEFAULT_LIMITS_DIR;

const NOBODY: u32 = 65534;

/// A uid of no account and of no other test run at the same time.
fn victim_uid() -> u32 {
    40_000 + std::process::id() % 20_000
}

/// `program args` run as `uid`, with no `FADVISE_SHIM_*` or
/// `XDG_RUNTIME_DIR` unless `env` sets them.
fn as_user(uid: u32, program: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut command: Command = clean_command("setpriv");
    command
        .env_remove("XDG_RUNTIME_DIR")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .arg("--clear-groups")
        .arg(program)
        .args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("setpriv runs")
}

/// `dd` writing 20 blocks with `oflag=nocache` into `out`, under the
/// library's built-in default policy.
fn dd(uid: u32, out: &Path, env: &[(&str, &Path)]) -> Output {
    let of = format!("of={}", out.display());
    let mut env = env.to_vec();
    let library = library();
    env.push(("LD_PRELOAD", &library));
    as_user(
        uid,
        Path::new("/bin/dd"),
        &["if=/dev/zero", &of, "bs=128k", "count=20", "oflag=nocache"],
        &env,
    )
}

/// A scratch directory the victim can write in.
fn open_scratch() -> Scratch {
    let scratch = Scratch::new();
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    scratch
}

/// Removes the squatted directory whatever the test's outcome.
struct Squatted(std::path::PathBuf);

impl Drop for Squatted {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_default_directory_another_user_made_first_is_named_by_process_and_readers() {
    if hardening::skip(hardening::namespaces_unavailable()) {
        return;
    }
    let victim = victim_uid();
    // The shared parent as the library makes it (root's, sticky, open to
    // all), then the victim's directory made by nobody.
    let parent = Path::new(DEFAULT_LIMITS_DIR);
    if !parent.exists() {
        std::fs::create_dir(parent).unwrap();
    }
    // Another test's process running as another user may have made it
    // first; this test is about the directory below it.
    std::os::unix::fs::chown(parent, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let squatted = parent.join(format!("stats-{victim}"));
    let _cleanup = Squatted(squatted.clone());
    let _ = std::fs::remove_dir_all(&squatted);
    let made = as_user(
        NOBODY,
        Path::new("/bin/mkdir"),
        &["-m", "777", squatted.to_str().unwrap()],
        &[],
    );
    assert!(made.status.success(), "{made:?}");

    let scratch = open_scratch();
    let finished = dd(victim, &scratch.file("out"), &[]);
    let stderr = String::from_utf8_lossy(&finished.stderr);
    assert!(finished.status.success(), "{stderr}");
    let said = format!(
        "fadvise-shim: the default stats directory {} was made by user {NOBODY}, not by root or \
         this user: live statistics stay in private memory, unseen by report, top and serve\n",
        squatted.display()
    );
    assert_eq!(stderr.matches(&said).count(), 1, "{stderr}");
    assert_eq!(std::fs::read_dir(&squatted).unwrap().count(), 0);

    let owner = format!(
        "{} belongs to user nobody ({NOBODY}), not to root or this user: this user's processes \
         keep their live statistics in private memory instead, unseen here",
        squatted.display()
    );
    let report = as_user(victim, &cli(), &["report"], &[]);
    let report_stderr = String::from_utf8_lossy(&report.stderr);
    assert!(report_stderr.contains(&owner), "{report_stderr}");
    assert!(!report_stderr.contains("dumps (*.dump"), "{report_stderr}");
    let top = as_user(victim, &cli(), &["top", "--once", "--interval", "0.1"], &[]);
    let top_stderr = String::from_utf8_lossy(&top.stderr);
    assert!(top_stderr.contains(&owner), "{top_stderr}");
    let doctor = as_user(victim, &cli(), &["doctor", "/bin/dd"], &[]);
    let doctor_stdout = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        doctor_stdout.contains(&format!("warning: {owner}")),
        "{doctor_stdout}"
    );
}

#[test]
fn a_user_with_a_runtime_directory_keeps_the_statistics_there() {
    if hardening::skip(hardening::namespaces_unavailable()) {
        return;
    }
    let victim = victim_uid() + 1;
    let scratch = open_scratch();
    let runtime = scratch.file("run-user");
    std::fs::create_dir(&runtime).unwrap();
    std::os::unix::fs::chown(&runtime, Some(victim), Some(victim)).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let env = [("XDG_RUNTIME_DIR", runtime.as_path())];
    let finished = dd(victim, &scratch.file("out"), &env);
    assert!(finished.status.success(), "{finished:?}");
    let stderr = String::from_utf8_lossy(&finished.stderr);
    assert!(!stderr.contains("fadvise-shim"), "{stderr}");
    let stats_files = std::fs::read_dir(runtime.join("fadvise-shim"))
        .unwrap()
        .filter(|entry| {
            let name = entry.as_ref().unwrap().file_name();
            name.to_string_lossy().ends_with(".stats")
        })
        .count();
    assert_eq!(stats_files, 1);
    let report = as_user(victim, &cli(), &["report", "--format", "json"], &env);
    assert!(report.status.success(), "{report:?}");
    let json: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(json["calls"]["posix_fadvise"]["count"], 20, "{json}");
}
