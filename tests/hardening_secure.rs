//! Secure execution (issue 6, point 1): a setuid-root program started by an
//! unprivileged user reaches the shim only through `/etc/ld.so.preload`, and
//! there the user's `FADVISE_SHIM_*` variables must be ignored — only the
//! system policy and its dump directory count.
//!
//! Each run happens in a private mount namespace (`unshare -m`) over which a
//! copy of `/etc` is bind-mounted, holding an `ld.so.preload` that names the
//! shim and a system policy; the host's `/etc` is never touched. The program
//! itself reports whether the shim is mapped and whether its calls reached
//! the kernel (a seccomp filter fails them there with EPERM). The same
//! program without the setuid bit is the control: there the variables apply.
//! Needs root; skipped with a reason otherwise.

mod common;
mod hardening;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{clean_command, counts, library, run, Finished, DROP_ALL, TIMEOUT};
use fadvise_shim_core::call::Call;
use fadvise_shim_core::dump::{parse_dump, Dump};
use fadvise_shim_core::policy::{DUMP_DIR_ENV, ON_EXIT_ENV, POLICY_ENV, SYSTEM_POLICY_PATH};
use hardening::{listing, mode, NOBODY};
use tempfile::TempDir;

/// A world-readable tree: the programs, a copy of the library, a copy of
/// `/etc`, the system dump directory's parent, and the user's own corner.
struct Stage {
    root: TempDir,
}

impl Stage {
    fn new() -> Stage {
        let root = tempfile::Builder::new()
            .prefix("secure-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("stage directory");
        set_mode(root.path(), 0o755);
        let stage = Stage { root };
        for dir in ["bin", "lib", "user"] {
            std::fs::create_dir(stage.path(dir)).unwrap();
            set_mode(&stage.path(dir), 0o755);
        }
        let probe = hardening::program("secure_probe");
        // The setuid copy (root owns it: the test runs as root) and a plain one.
        std::fs::copy(&probe, stage.path("bin/setuid_probe")).unwrap();
        set_mode(&stage.path("bin/setuid_probe"), 0o4755);
        std::fs::copy(&probe, stage.path("bin/plain_probe")).unwrap();
        set_mode(&stage.path("bin/plain_probe"), 0o755);
        std::fs::copy(library(), stage.path("lib/libfadvise_shim.so")).unwrap();
        set_mode(&stage.path("lib/libfadvise_shim.so"), 0o755);
        let copied = Command::new("cp")
            .arg("-a")
            .arg("/etc")
            .arg(stage.path("etc"))
            .status()
            .expect("cp runs");
        assert!(copied.success(), "copying /etc");
        std::fs::write(
            stage.path("etc/ld.so.preload"),
            format!("{}\n", stage.path("lib/libfadvise_shim.so").display()),
        )
        .unwrap();
        std::fs::create_dir_all(stage.etc_policy().parent().unwrap()).unwrap();
        // The user's corner: their own dump directory and a policy that
        // would drop everything and dump elsewhere.
        hardening::lchown(&stage.path("user"), NOBODY);
        std::fs::create_dir(stage.path("user/dumps")).unwrap();
        hardening::lchown(&stage.path("user/dumps"), NOBODY);
        let user_policy = format!(
            "[dump]\ndir = \"{}\"\non_exit = true\n\n{DROP_ALL}",
            stage.path("user/policy-dumps").display()
        );
        std::fs::write(stage.path("user/policy.toml"), user_policy).unwrap();
        hardening::lchown(&stage.path("user/policy.toml"), NOBODY);
        stage
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root.path().join(relative)
    }

    /// The system policy as the namespace sees it at SYSTEM_POLICY_PATH.
    fn etc_policy(&self) -> PathBuf {
        let relative = Path::new(SYSTEM_POLICY_PATH).strip_prefix("/etc").unwrap();
        self.path("etc").join(relative)
    }

    fn system_dumps(&self) -> PathBuf {
        self.path("system-dumps")
    }

    fn write_system_policy(&self, on_exit: bool) {
        let text = format!(
            "[dump]\ndir = \"{}\"\non_exit = {on_exit}\n",
            self.system_dumps().display()
        );
        std::fs::write(self.etc_policy(), text).unwrap();
    }

    /// Runs `program` as nobody, with every `FADVISE_SHIM_*` variable
    /// pointing into the user's corner, in a namespace that sees our `/etc`.
    fn run_as_nobody(&self, program: &str) -> Finished {
        let mut command = clean_command("unshare");
        command
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg("mount --bind \"$1\" /etc && shift && exec \"$@\"")
            .arg("sh")
            .arg(self.path("etc"))
            .args([
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
            ])
            .arg(self.path(program))
            .arg(self.path("user/data"))
            .env(POLICY_ENV, self.path("user/policy.toml"))
            .env(DUMP_DIR_ENV, self.path("user/dumps"))
            .env(ON_EXIT_ENV, "1");
        run(&mut command, TIMEOUT)
    }

    fn user_wrote_nothing(&self) {
        assert_eq!(listing(&self.path("user/dumps")), Vec::<String>::new());
        assert!(!self.path("user/policy-dumps").exists());
    }
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|error| panic!("chmod {}: {error}", path.display()));
}

fn only_dump(dir: &Path) -> (String, Dump) {
    let names = listing(dir);
    assert_eq!(
        names.len(),
        1,
        "one dump expected in {}: {names:?}",
        dir.display()
    );
    let text = std::fs::read_to_string(dir.join(&names[0])).unwrap();
    let dump = parse_dump(&text).unwrap_or_else(|error| panic!("{error}\n{text}"));
    (names[0].clone(), dump)
}

fn assert_host_etc_untouched(before: &Option<Vec<u8>>) {
    assert_eq!(&std::fs::read("/etc/ld.so.preload").ok(), before);
    assert!(!Path::new(SYSTEM_POLICY_PATH).exists() || before.is_some());
}

#[test]
fn setuid_program_ignores_the_users_variables() {
    if hardening::skip(hardening::namespaces_unavailable()) {
        return;
    }
    let host_preload = std::fs::read("/etc/ld.so.preload").ok();
    let stage = Stage::new();
    stage.write_system_policy(true);

    let finished = stage.run_as_nobody("bin/setuid_probe");
    finished.assert_success("setuid probe");
    assert_eq!(
        finished.stdout,
        format!("shim mapped yes\nuid {NOBODY} euid 0 secure 1\nfadvise kernel\nfsync kernel\n"),
        "the shim must be loaded and its user's drop-everything policy ignored\n{finished}"
    );
    stage.user_wrote_nothing();
    let (name, dump) = only_dump(&stage.system_dumps());
    assert!(name.starts_with("setuid_probe."), "{name}");
    assert_eq!(dump.policy, SYSTEM_POLICY_PATH);
    assert_eq!(dump.reason, "exit");
    // Both calls passed to the kernel, which failed them (EPERM).
    for call in [Call::PosixFadvise, Call::Fsync] {
        assert_eq!(counts(dump.stats.call(call)), (1, 1, 0, 0, 1), "{call:?}");
    }
    // Created by the shim (as root) without group or world write.
    assert_eq!(mode(&stage.system_dumps()) & 0o022, 0);
    assert_host_etc_untouched(&host_preload);
}

#[test]
fn setuid_program_ignores_the_users_on_exit_request() {
    if hardening::skip(hardening::namespaces_unavailable()) {
        return;
    }
    let stage = Stage::new();
    stage.write_system_policy(false);
    let finished = stage.run_as_nobody("bin/setuid_probe");
    finished.assert_success("setuid probe");
    assert!(finished.stdout.contains("secure 1\n"), "{finished}");
    stage.user_wrote_nothing();
    assert_eq!(listing(&stage.system_dumps()), Vec::<String>::new());
}

/// The control: the same program without the setuid bit, same user, same
/// variables. Here they apply, so the runs above prove something.
#[test]
fn plain_program_of_the_same_user_follows_the_variables() {
    if hardening::skip(hardening::namespaces_unavailable()) {
        return;
    }
    let stage = Stage::new();
    stage.write_system_policy(true);
    let finished = stage.run_as_nobody("bin/plain_probe");
    finished.assert_success("plain probe");
    assert_eq!(
        finished.stdout,
        format!("shim mapped yes\nuid {NOBODY} euid {NOBODY} secure 0\nfadvise dropped\nfsync dropped\n"),
        "{finished}"
    );
    let (name, dump) = only_dump(&stage.path("user/dumps"));
    assert!(name.starts_with("plain_probe."), "{name}");
    assert_eq!(Path::new(&dump.policy), stage.path("user/policy.toml"));
    for call in [Call::PosixFadvise, Call::Fsync] {
        assert_eq!(counts(dump.stats.call(call)), (1, 0, 1, 0, 0), "{call:?}");
    }
    assert_eq!(listing(&stage.system_dumps()), Vec::<String>::new());
}
