//! `fadvise-shim top` from outside: real programs making calls at a known
//! pace under the shim, `top --once` read as a script would, and the live
//! view in a real terminal (tmux) quit with `q`, Ctrl-C and SIGTERM, the
//! shell's terminal modes checked with `stty` afterwards.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{clean_command, cli, compile_c, poll, run, Running, Scratch, Shim, TIMEOUT};
use fadvise_shim_core::policy::{DUMP_DIR_ENV, STATS_DIR_ENV};

/// `tests/c_top/paced.c` under the shim as `exe`, making `rate` calls per
/// second for `seconds`, once it has made its first calls.
fn paced(scratch: &Scratch, program: &Path, rate: u32, seconds: f64) -> Running {
    let mut command = scratch.command(program, Shim::Default);
    command
        .arg(scratch.file("data"))
        .arg(rate.to_string())
        .arg(seconds.to_string());
    let mut running = Running::start(&mut command);
    running.wait_for_line(TIMEOUT, |line| line == "ready");
    running
}

fn program(exe: &str) -> std::path::PathBuf {
    compile_c("c_top", "paced", exe, &[])
}

/// `top --once --by BY` on the scratch stats directory.
fn top_once(scratch: &Scratch, by: &str, extra: &[&str]) -> common::Finished {
    let mut command = clean_command(cli());
    command
        .args(["top", "--once", "--by", by])
        .args(extra)
        .arg(scratch.stats_dir());
    run(&mut command, TIMEOUT)
}

/// The calls/s figure and the exe of each row of a `--by exe` table.
fn rows(stdout: &str) -> Vec<(f64, String)> {
    stdout
        .lines()
        .skip(2)
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            let rate = cells[0]
                .parse()
                .unwrap_or_else(|_| panic!("calls/s of {line:?}"));
            (rate, cells.last().unwrap().to_string())
        })
        .collect()
}

#[test]
fn once_puts_the_busy_program_first_at_its_real_rate() {
    let scratch = Scratch::new();
    let _busy = paced(&scratch, &program("top-busy"), 2_000, 20.0);
    let _idle = paced(&scratch, &program("top-idle"), 0, 20.0);
    // Exits within top's interval: its counts go from its stats file to
    // its aggregate while top samples.
    let exiting = paced(&scratch, &program("top-exiting"), 300, 0.4);
    let finished = top_once(&scratch, "exe", &["--interval", "1"]);
    finished.assert_success("top --once");
    exiting.wait(TIMEOUT).assert_success("exiting program");
    let out = &finished.stdout;
    assert!(!out.contains('\x1b'), "ANSI in --once output:\n{out}");
    assert!(out.contains(" live processes "), "{out}");
    let rows = rows(out);
    let names: Vec<&str> = rows.iter().map(|(_, exe)| exe.as_str()).collect();
    assert_eq!(names[0], "top-busy", "{out}");
    assert!(names.contains(&"top-idle"), "{out}");
    assert!(names.contains(&"top-exiting"), "{out}");
    assert!((1_000.0..=4_000.0).contains(&rows[0].0), "{out}");
    assert!(rows.iter().all(|(rate, _)| *rate >= 0.0), "{out}");
    let idle = rows.iter().find(|(_, exe)| exe == "top-idle").unwrap();
    assert_eq!(idle.0, 0.0, "{out}");
    let exiting = rows.iter().find(|(_, exe)| exe == "top-exiting").unwrap();
    assert!(exiting.0 <= 300.0, "{out}");

    // Once it has exited and been retired, its row stays and stays at 0.
    let after = top_once(&scratch, "process", &["--interval", "0.3"]);
    after.assert_success("top --once --by process");
    let exited = after
        .stdout
        .lines()
        .find(|line| line.contains("top-exiting (exited)"))
        .unwrap_or_else(|| panic!("no exited row:\n{}", after.stdout));
    assert!(exited.trim_start().starts_with("0.0 "), "{}", after.stdout);
}

#[test]
fn hostile_exe_names_reach_the_output_sanitised() {
    let scratch = Scratch::new();
    let hostile = scratch.file("evil\x1b[31m\u{9b}2Jred");
    // A hard link, not a copy: a copy's write descriptor, inherited by a
    // process another test forks at that moment, makes exec fail with
    // ETXTBSY.
    std::fs::hard_link(program("top-hostile"), &hostile).expect("link program");
    let _running = paced(&scratch, &hostile, 0, 20.0);
    let finished = top_once(&scratch, "exe", &["--interval", "0.2"]);
    finished.assert_success("top --once");
    let out = &finished.stdout;
    assert!(out.contains("evil?[31m?2Jred"), "{out:?}");
    assert!(
        !out.contains('\x1b') && !out.contains('\u{9b}'),
        "control characters reached the output: {out:?}"
    );
}

#[test]
fn without_a_stats_directory_one_line_and_exit_1() {
    let scratch = Scratch::new();
    let mut command = clean_command(cli());
    command
        .args(["top", "--once"])
        .env(STATS_DIR_ENV, scratch.file("no-stats"))
        .env(DUMP_DIR_ENV, scratch.file("no-dumps"));
    let finished = run(&mut command, TIMEOUT);
    assert_eq!(finished.status.code(), Some(1), "{finished}");
    assert_eq!(finished.stderr.lines().count(), 1, "{finished}");
    assert!(finished.stderr.starts_with("fadvise-shim: "), "{finished}");
    assert!(finished.stdout.is_empty(), "{finished}");

    let mut named = clean_command(cli());
    named.args(["top", "--once"]).arg(scratch.file("missing"));
    let finished = run(&mut named, TIMEOUT);
    assert_eq!(finished.status.code(), Some(1), "{finished}");
    assert_eq!(finished.stderr.lines().count(), 1, "{finished}");

    let mut bad = clean_command(cli());
    bad.args(["top", "--once", "--interval", "0"]);
    assert_eq!(run(&mut bad, TIMEOUT).status.code(), Some(2));
}

/// A tmux server of our own (its socket in the scratch directory), killed
/// when dropped.
struct Tmux {
    socket: std::path::PathBuf,
}

impl Tmux {
    fn command(&self, args: &[&str]) -> String {
        let output = clean_command("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs");
        assert!(output.status.success(), "tmux {args:?}: {output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.command(&["capture-pane", "-p"])
    }

    fn alternate_screen(&self) -> bool {
        self.command(&["display-message", "-p", "#{alternate_on}"])
            .trim()
            == "1"
    }

    /// Waits until the pane's screen satisfies `wanted`; fails with it if not.
    fn wait_for(&self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        poll(Duration::from_secs(10), || {
            let screen = self.screen();
            wanted(&screen).then_some(screen)
        })
        .unwrap_or_else(|| panic!("{what}; the pane shows:\n{}", self.screen()))
    }

    /// Waits for the shell's prompt on the last line of a normal screen.
    fn wait_for_prompt(&self, what: &str) -> String {
        self.wait_for(what, |screen| {
            !self.alternate_screen() && screen.trim_end().ends_with(PROMPT.trim_end())
        })
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

const PROMPT: &str = "READY$ ";

#[test]
fn in_a_terminal_q_ctrl_c_and_sigterm_quit_and_restore_it() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("skipped: tmux is not installed (scripts/setup.sh installs it)");
        return;
    }
    let scratch = Scratch::new();
    let _busy = paced(&scratch, &program("top-tty"), 2_000, 30.0);
    let tmux = Tmux {
        socket: scratch.file("tmux.sock"),
    };
    tmux.command(&[
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-x",
        "100",
        "-y",
        "20",
        &format!("env PS1='{PROMPT}' sh"),
    ]);
    tmux.wait_for_prompt("no shell prompt");
    let pid_file = scratch.file("top.pid");
    let top = format!(
        "sh -c 'echo $$ > {}; exec {} top --interval 0.5 {}'",
        pid_file.display(),
        cli().display(),
        scratch.stats_dir().display()
    );
    let stty = "stty -a | tr ' ' '\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' '; echo";
    for quit in ["q", "C-c", "SIGTERM"] {
        let _ = std::fs::remove_file(&pid_file);
        tmux.command(&["send-keys", &top, "Enter"]);
        let screen = tmux.wait_for("top did not show the busy program", |screen| {
            screen.contains("CALLS/S") && screen.contains("top-tty")
        });
        assert!(tmux.alternate_screen(), "not on the alternate screen");
        assert!(screen.lines().count() <= 20, "{screen}");
        if quit == "SIGTERM" {
            let pid: libc::pid_t = std::fs::read_to_string(&pid_file)
                .expect("top's pid file")
                .trim()
                .parse()
                .expect("a pid");
            // SAFETY: kill has no memory-safety requirements; the pid is the
            // top this test started, still running (its table is on screen).
            assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        } else {
            tmux.command(&["send-keys", quit]);
        }
        let screen = tmux.wait_for_prompt(&format!("{quit} did not end top"));
        assert!(!screen.contains("CALLS/S"), "table left behind:\n{screen}");
        tmux.command(&["send-keys", "clear", "Enter"]);
        tmux.command(&["send-keys", stty, "Enter"]);
        tmux.wait_for(
            &format!("terminal modes not restored after {quit}"),
            |screen| screen.contains("icanon echo"),
        );
        tmux.command(&["send-keys", "clear", "Enter"]);
        tmux.wait_for_prompt("no prompt after clear");
    }
}
