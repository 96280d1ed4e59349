//! End-to-end tests of `fadvise-shim install --root` and `uninstall`, and of
//! the Debian package.
//!
//! Quick ones use small fake roots: the host's own `/bin/sh`, loader and
//! libraries copied into a directory (a root the library would load in), or
//! hand-made ELF headers standing for a foreign-architecture root, and a
//! musl root (musl's loader and a static busybox) with a stand-in library
//! whose loading needs each test chooses.
//! The rest run in a real Debian bookworm root made by `debootstrap` (cached
//! under `target/debootstrap-cache/`): unmodified programs started with
//! `chroot` must run under the shim, obey the installed policy and dump on
//! SIGUSR1, and `uninstall` must leave the root as it was. Those tests are
//! skipped, saying why, only where debootstrap cannot run (not root, no
//! debootstrap, no mount namespaces).

mod common;
mod install_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fadvise_shim_core::call::Call;
use fadvise_shim_core::dump::{parse_dump, Dump};
use install_support::*;
use tempfile::TempDir;

const PRELOAD: &str = "etc/ld.so.preload";
/// Directories that the programs run in a root write to: not part of what
/// install or uninstall may change.
const VOLATILE: [&str; 3] = ["proc", "tmp", "dev/shm"];

fn install(root: &Path, extra: &[&str]) -> Run {
    let root = root.to_str().unwrap();
    Run::of(&mut fadvise_shim(
        &[&["install", "--root", root], extra].concat(),
    ))
}

/// `install` run by the copy of the CLI in `dir`, which installs the
/// library beside it (a stand-in, from `cli_with_stand_in_library`).
fn install_from(dir: &Path, root: &Path, extra: &[&str]) -> Run {
    Run::of(
        std::process::Command::new(dir.join("fadvise-shim"))
            .args(["install", "--root"])
            .arg(root)
            .args(extra)
            .env_remove("LD_PRELOAD")
            .env("LC_ALL", "C"),
    )
}

fn uninstall(root: &Path) -> Run {
    Run::of(&mut fadvise_shim(&[
        "uninstall",
        "--root",
        root.to_str().unwrap(),
    ]))
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn a_stats_directory_another_user_made_first_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let root = fake_glibc_root();
    let squatted = root.path().join("run/fadvise-shim");
    std::fs::create_dir_all(&squatted).unwrap();
    std::fs::set_permissions(&squatted, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::fs::chown(&squatted, Some(65534), Some(65534)).unwrap();
    let run = install(root.path(), &[]).success("install");
    assert!(
        run.stderr
            .contains("/run/fadvise-shim belongs to uid 65534, not root"),
        "{run}"
    );
}

#[test]
fn global_install_creates_ld_so_preload_and_uninstall_removes_it() {
    let root = fake_glibc_root();
    let before = snapshot(root.path(), &[], false);
    let run = install(root.path(), &["--preload", "global"]).success("install");
    assert!(
        run.stdout.is_empty(),
        "stdout is for --preload env only:\n{run}"
    );

    let preload = root.path().join(PRELOAD);
    assert_eq!(
        std::fs::read_to_string(&preload).unwrap(),
        format!("{LIBRARY_INSIDE}\n")
    );
    assert_eq!(mode(&preload), 0o644);
    let installed_library = root.path().join(LIBRARY_INSIDE.trim_start_matches('/'));
    assert_eq!(
        std::fs::read(&installed_library).unwrap(),
        std::fs::read(library()).unwrap()
    );
    assert_eq!(mode(&installed_library), 0o755);
    assert_eq!(mode(&root.path().join("usr/bin/fadvise-shim")), 0o755);
    let policy = std::fs::read_to_string(root.path().join("etc/fadvise-shim/policy.toml")).unwrap();
    assert_eq!(
        policy,
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("policy.example.toml"))
            .unwrap()
    );
    // Root's default stats directory, made by root now and, through
    // tmpfiles.d, at every boot, before any other user can make it.
    assert_eq!(mode(&root.path().join("run/fadvise-shim")), 0o755);
    assert!(root
        .path()
        .join("usr/lib/tmpfiles.d/fadvise-shim.conf")
        .is_file());

    uninstall(root.path()).success("uninstall");
    assert!(
        !preload.exists(),
        "install created ld.so.preload, so uninstall removes it"
    );
    assert_same_tree(
        &before,
        &snapshot(root.path(), &[], false),
        "root after uninstall",
    );
}

#[test]
fn other_preloads_keep_their_order_and_come_back_byte_for_byte() {
    let root = fake_glibc_root();
    let original = "# site preloads\n/usr/lib/libother.so\n\n/a.so:/b.so /c.so";
    let preload = root.path().join(PRELOAD);
    std::fs::write(&preload, original).unwrap();
    std::fs::set_permissions(
        &preload,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let before = snapshot(root.path(), &[], false);

    install(root.path(), &["--preload", "global"]).success("install");
    assert_eq!(
        std::fs::read_to_string(&preload).unwrap(),
        format!("{LIBRARY_INSIDE}\n{original}"),
        "ours first (it sees every call, then hands it on), the rest as it was"
    );
    assert_eq!(mode(&preload), 0o600, "the file keeps its mode");

    let run = uninstall(root.path()).success("uninstall");
    assert_eq!(
        std::fs::read_to_string(&preload).unwrap(),
        original,
        "{run}"
    );
    assert_same_tree(
        &before,
        &snapshot(root.path(), &[], false),
        "root after uninstall",
    );
}

#[test]
fn a_second_install_changes_nothing() {
    let root = fake_glibc_root();
    std::fs::write(root.path().join(PRELOAD), "/usr/lib/libother.so\n").unwrap();
    install(root.path(), &["--preload", "global"]).success("first install");
    let first = snapshot(root.path(), &[], true);
    let run = install(root.path(), &["--preload", "global"]).success("second install");
    assert_same_tree(&first, &snapshot(root.path(), &[], true), "second install");
    assert!(run.stderr.contains("already lists"), "{run}");
    // And an uninstall still takes out only what the first one put in.
    uninstall(root.path()).success("uninstall");
    assert_eq!(
        std::fs::read_to_string(root.path().join(PRELOAD)).unwrap(),
        "/usr/lib/libother.so\n"
    );
}

#[test]
fn a_line_the_user_added_is_not_taken_out() {
    let root = fake_glibc_root();
    let original = format!("{LIBRARY_INSIDE}\n");
    std::fs::write(root.path().join(PRELOAD), &original).unwrap();
    install(root.path(), &["--preload", "global"]).success("install");
    uninstall(root.path()).success("uninstall");
    assert_eq!(
        std::fs::read_to_string(root.path().join(PRELOAD)).unwrap(),
        original
    );
}

#[test]
fn an_invalid_policy_is_refused_before_anything_is_written() {
    let root = fake_glibc_root();
    let scratch = scratch();
    let policy = scratch.path().join("bad.toml");
    std::fs::write(
        &policy,
        "[dump]\nsignal = \"SIGUSR1\"\n\n[[rule]]\ncall = \"fsink\"\naction = \"drop\"\n",
    )
    .unwrap();
    let before = snapshot(root.path(), &[], true);
    let run = install(
        root.path(),
        &["--preload", "global", "--policy", policy.to_str().unwrap()],
    );
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr.contains(&format!("{}:5:8: ", policy.display())),
        "{run}"
    );
    assert_same_tree(
        &before,
        &snapshot(root.path(), &[], true),
        "refused install",
    );
}

#[test]
fn an_existing_policy_is_kept_unless_one_is_given_and_an_edited_one_survives_uninstall() {
    let root = fake_glibc_root();
    let installed = root.path().join("etc/fadvise-shim/policy.toml");
    std::fs::create_dir_all(installed.parent().unwrap()).unwrap();
    let theirs = "[dump]\non_exit = true\n";
    std::fs::write(&installed, theirs).unwrap();
    let run = install(root.path(), &[]).success("install");
    assert!(
        run.stderr
            .contains("kept the existing /etc/fadvise-shim/policy.toml"),
        "{run}"
    );
    assert_eq!(std::fs::read_to_string(&installed).unwrap(), theirs);
    uninstall(root.path()).success("uninstall");
    assert_eq!(
        std::fs::read_to_string(&installed).unwrap(),
        theirs,
        "not ours to remove"
    );

    // Given explicitly, a policy replaces it...
    std::fs::remove_file(&installed).unwrap();
    let scratch = scratch();
    let given = scratch.path().join("drop.toml");
    std::fs::write(&given, "[[rule]]\ncall = \"fsync\"\naction = \"drop\"\n").unwrap();
    install(root.path(), &["--policy", given.to_str().unwrap()]).success("install --policy");
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(&given).unwrap()
    );
    // ...and once someone edits it, uninstall keeps it and says so.
    std::fs::write(&installed, "# tuned by hand\n").unwrap();
    let run = uninstall(root.path()).success("uninstall");
    assert!(
        run.stderr.contains("kept /etc/fadvise-shim/policy.toml"),
        "{run}"
    );
    assert_eq!(
        std::fs::read_to_string(&installed).unwrap(),
        "# tuned by hand\n"
    );
    assert!(!root.path().join("usr/lib/fadvise-shim").exists());
}

#[test]
fn env_mode_prints_the_dockerfile_line_and_leaves_ld_so_preload_alone() {
    let root = fake_glibc_root();
    let run = install(root.path(), &["--preload", "env"]).success("install --preload env");
    assert_eq!(
        run.stdout,
        format!("ENV LD_PRELOAD=\"{LIBRARY_INSIDE}${{LD_PRELOAD:+:$LD_PRELOAD}}\"\n")
    );
    assert!(!root.path().join(PRELOAD).exists());
    // The same expansion in sh: an LD_PRELOAD already set stays, behind ours.
    let expand = |existing: &str| {
        let script = format!("echo \"{LIBRARY_INSIDE}${{LD_PRELOAD:+:$LD_PRELOAD}}\"");
        let mut command = std::process::Command::new("sh");
        command.args(["-c", &script]).env("LD_PRELOAD", existing);
        Run::of(&mut command).success("sh").stdout
    };
    assert_eq!(expand(""), format!("{LIBRARY_INSIDE}\n"));
    assert_eq!(expand("/x.so"), format!("{LIBRARY_INSIDE}:/x.so\n"));
}

#[test]
fn roots_the_library_cannot_load_in_are_refused_before_anything_is_written() {
    let foreign = if host_machine() == EM_X86_64 {
        EM_AARCH64
    } else {
        EM_X86_64
    };
    let cases: Vec<(&str, TempDir, &str)> = vec![
        (
            "musl whose loader is not ELF",
            fake_root(
                Some(tiny_elf(host_machine(), Some(MUSL_LOADER))),
                &[MUSL_LOADER],
            ),
            "musl root, but its loader /lib/ld-musl-x86_64.so.1 is missing or not ELF",
        ),
        (
            "musl with a static busybox sh, loader not ELF",
            fake_root(Some(tiny_elf(host_machine(), None)), &[MUSL_LOADER]),
            "musl root, but its loader",
        ),
        (
            "foreign architecture",
            fake_root(
                Some(tiny_elf(foreign, Some(host_loader()))),
                &[host_loader()],
            ),
            "foreign architecture: /bin/sh is",
        ),
        ("no programs at all", fake_root(None, &[]), "no loader"),
        (
            "loader missing",
            fake_root(Some(tiny_elf(host_machine(), Some(host_loader()))), &[]),
            "no loader:",
        ),
    ];
    for (what, root, expected) in cases {
        let before = snapshot(root.path(), &[], true);
        let run = install(root.path(), &["--preload", "global"]);
        assert_eq!(run.code, Some(1), "{what}: {run}");
        assert!(
            run.stderr.contains(expected),
            "{what}: expected {expected:?}\n{run}"
        );
        assert!(run.stderr.contains("cannot install into"), "{what}: {run}");
        assert_same_tree(&before, &snapshot(root.path(), &[], true), what);
    }

    let root = fake_glibc_root();
    let triplet = format!("{}-linux-gnu", std::env::consts::ARCH);
    std::fs::remove_file(root.path().join(format!("usr/lib/{triplet}/libc.so.6"))).unwrap();
    let run = install(root.path(), &["--preload", "global"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("no libc.so.6"), "{run}");
    assert!(!root.path().join(PRELOAD).exists());
}

/// The Dockerfile line `--preload env` prints, and a musl root gets.
fn env_line() -> String {
    format!("ENV LD_PRELOAD=\"{LIBRARY_INSIDE}${{LD_PRELOAD:+:$LD_PRELOAD}}\"\n")
}

#[test]
fn a_musl_root_gets_the_files_and_the_env_line_instead_of_ld_so_preload() {
    let root = musl_root();
    let source = cli_with_stand_in_library(&[]);
    let before = snapshot(root.path(), &[], false);
    let run = install_from(source.path(), root.path(), &["--preload", "global"]).success("install");
    assert!(
        run.stderr
            .contains("loader /lib/ld-musl-x86_64.so.1 (musl)"),
        "{run}"
    );
    assert_eq!(run.stdout, env_line(), "{run}");
    let preload_lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| line.contains("ld.so.preload"))
        .collect();
    assert_eq!(preload_lines.len(), 1, "{run}");
    assert!(
        preload_lines[0].starts_with("musl has no /etc/ld.so.preload"),
        "{run}"
    );
    assert!(!root.path().join(PRELOAD).exists(), "{run}");
    let installed = |inside: &str| std::fs::read(root.path().join(inside)).unwrap();
    assert_eq!(
        installed("usr/lib/fadvise-shim/libfadvise_shim.so"),
        std::fs::read(source.path().join("libfadvise_shim.so")).unwrap()
    );
    assert_eq!(
        installed("usr/bin/fadvise-shim"),
        std::fs::read(cli()).unwrap()
    );
    assert!(!run.stderr.contains("warning"), "the CLI is static:\n{run}");

    // The static CLI runs in the root, which has no glibc file.
    let checked = Run::of(&mut in_chroot(
        root.path(),
        &[
            "/usr/bin/fadvise-shim",
            "check",
            "/etc/fadvise-shim/policy.toml",
        ],
    ))
    .success("the installed CLI inside the musl root");
    assert!(checked.stdout.starts_with("valid policy"), "{checked}");

    let installed_tree = snapshot(root.path(), &VOLATILE, true);
    let again = install_from(source.path(), root.path(), &["--preload", "global"]).success("again");
    assert_eq!(again.stdout, env_line());
    assert_same_tree(
        &installed_tree,
        &snapshot(root.path(), &VOLATILE, true),
        "second install",
    );

    uninstall(root.path()).success("uninstall");
    assert_same_tree(&before, &snapshot(root.path(), &[], false), "uninstall");
}

#[test]
fn a_library_musl_cannot_load_is_refused_in_a_musl_root() {
    let loader_needed = format!("-Wl,--no-as-needed,{}", host_loader());
    let cases: [(&str, &[&str], &str); 2] = [
        (
            "needs glibc's loader",
            &[loader_needed.as_str()],
            "libfadvise_shim.so needs ld-linux-x86-64.so.2, which musl's loader does not provide",
        ),
        (
            "imports a glibc-only function",
            &["-DGLIBC_ONLY"],
            "libfadvise_shim.so needs _dl_find_object, which musl does not export",
        ),
    ];
    for (what, flags, expected) in cases {
        let root = musl_root();
        let source = cli_with_stand_in_library(flags);
        let before = snapshot(root.path(), &[], true);
        let run = install_from(source.path(), root.path(), &["--preload", "global"]);
        assert_eq!(run.code, Some(1), "{what}: {run}");
        assert!(
            run.stderr.contains(&format!(
                "cannot install into {}: musl root (/lib/ld-musl-x86_64.so.1): {expected}",
                root.path().canonicalize().unwrap().display()
            )),
            "{what}: {run}"
        );
        assert_eq!(run.stderr.lines().count(), 1, "{what}: {run}");
        assert_same_tree(&before, &snapshot(root.path(), &[], true), what);
    }
}

/// The `alpine` stage of deploy/Dockerfile, in a musl root with the real
/// library: the static CLI, run inside the root, installs itself and the
/// library and prints the `ENV` line; a program built with `musl-gcc`
/// started with that `LD_PRELOAD` runs under the shim, and the installed CLI
/// reads its statistics there. Then uninstall restores the root.
#[test]
fn in_a_musl_root_the_alpine_steps_preload_a_musl_program() {
    let root = musl_root();
    let probe = root.path().join("probe");
    compile_probe_with("musl-gcc", &probe);
    let on_host = Run::of(std::process::Command::new(&probe).env("LD_PRELOAD", library()));
    if on_host.code != Some(0) {
        eprintln!(
            "SKIPPED: the library does not load in musl processes here (issue 22, item 1):\n{on_host}"
        );
        return;
    }
    let before = snapshot(root.path(), &VOLATILE, false);
    let stage = root.path().join("tmp/fadvise-shim-install");
    std::fs::create_dir_all(&stage).unwrap();
    std::fs::copy(cli(), stage.join("fadvise-shim")).unwrap();
    std::fs::copy(library(), stage.join("libfadvise_shim.so")).unwrap();
    let installed = Run::of(&mut in_chroot(
        root.path(),
        &[
            "/bin/sh",
            "-c",
            "/tmp/fadvise-shim-install/fadvise-shim install --root / --preload global \
             && rm -r /tmp/fadvise-shim-install",
        ],
    ))
    .success("install inside the musl root");
    assert_eq!(installed.stdout, env_line(), "{installed}");
    assert!(!root.path().join(PRELOAD).exists());

    let run = Run::of(&mut in_chroot(
        root.path(),
        &[
            "/bin/sh",
            "-c",
            "export LD_PRELOAD=/usr/lib/fadvise-shim/libfadvise_shim.so \
             FADVISE_SHIM_STATS_DIR=/tmp/stats; /probe && unset LD_PRELOAD && \
             /usr/bin/fadvise-shim report --format json /tmp/stats",
        ],
    ))
    .success("the musl probe under the shim");
    assert!(run.stdout.contains("shim=1 fsync=1"), "{run}");
    let json = &run.stdout[run.stdout.find('{').expect("a JSON report")..];
    let report: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(report["calls"]["fsync"]["count"], 1, "{report}");

    Run::of(&mut in_chroot(
        root.path(),
        &["/usr/bin/fadvise-shim", "uninstall", "--root", "/"],
    ))
    .success("uninstall inside the musl root");
    assert_same_tree(
        &before,
        &snapshot(root.path(), &VOLATILE, false),
        "root after uninstall",
    );
}

#[test]
fn uninstall_without_an_install_does_nothing() {
    let root = fake_glibc_root();
    let before = snapshot(root.path(), &[], true);
    let run = uninstall(root.path()).success("uninstall");
    assert!(run.stderr.contains("nothing to uninstall"), "{run}");
    assert_same_tree(&before, &snapshot(root.path(), &[], true), "uninstall");
}

/// A Debian root, or `None` after saying why this test is skipped.
fn debian_root_or_skip(test: &str) -> Option<TempDir> {
    match debian_root() {
        Ok(root) => Some(root),
        Err(reason) => {
            eprintln!("SKIPPED {test}: {reason}");
            None
        }
    }
}

/// Lines of `grep -c libfadvise_shim` over the maps of `sh` and of `grep`
/// itself, run in the root: how many of the two have the shim loaded.
fn shim_loaded_in_sh_and_grep(root: &Path) -> Vec<u32> {
    let run = Run::of(&mut in_chroot(
        root,
        &[
            "/bin/sh",
            "-c",
            "grep -c libfadvise_shim /proc/$$/maps; grep -c libfadvise_shim /proc/self/maps; true",
        ],
    ));
    run.stdout
        .lines()
        .map(|line| line.trim().parse().unwrap_or_else(|_| panic!("{run}")))
        .collect()
}

/// The dump in `dir` (inside `root`) whose name starts with `prefix`. The
/// directory may also hold stats files of the same program (root's default
/// stats directory is root's default dump directory), so the suffix counts.
fn dump_in(root: &Path, dir: &str, prefix: &str) -> Option<Dump> {
    let entry = std::fs::read_dir(root.join(dir))
        .ok()?
        .flatten()
        .find(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.starts_with(prefix) && name.ends_with(".dump")
        })?;
    Some(parse_dump(&std::fs::read_to_string(entry.path()).ok()?).expect("a readable dump"))
}

#[test]
fn in_a_debian_root_every_program_runs_under_the_shim_and_uninstall_restores_it() {
    let Some(root) = debian_root_or_skip("debian root end to end") else {
        return;
    };
    let root = root.path();
    // A dynamic setuid-root program, run below as nobody: only
    // /etc/ld.so.preload reaches such a process (LD_PRELOAD does not).
    let probe = root.join("usr/local/bin/install-probe");
    compile_probe_with("cc", &probe);
    std::fs::set_permissions(&probe, std::os::unix::fs::PermissionsExt::from_mode(0o4755)).unwrap();
    assert!(!root.join(PRELOAD).exists(), "minbase has no ld.so.preload");
    let before = snapshot(root, &VOLATILE, false);

    let scratch = scratch();
    let policy = scratch.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[dump]\ndir = \"/tmp/fadvise-shim\"\nsignal = \"SIGUSR1\"\n\n\
         [[rule]]\nname = \"nocache\"\ncall = \"posix_fadvise\"\nadvice = \"dontneed\"\naction = \"drop\"\n",
    )
    .unwrap();
    let run = install(
        root,
        &["--preload", "global", "--policy", policy.to_str().unwrap()],
    )
    .success("install");
    assert!(
        run.stderr.contains("GLIBC_2."),
        "names the root's glibc:\n{run}"
    );

    let loaded = shim_loaded_in_sh_and_grep(root);
    assert!(
        loaded.len() == 2 && loaded.iter().all(|&lines| lines > 0),
        "{loaded:?}"
    );

    // dd drops its page cache after each write: the policy drops that call.
    Run::of(&mut in_chroot(
        root,
        &[
            "env",
            "FADVISE_SHIM_ON_EXIT=1",
            "dd",
            "if=/dev/zero",
            "of=/tmp/x",
            "bs=64k",
            "count=100",
            "oflag=nocache",
        ],
    ))
    .success("dd in the root");
    let dd = dump_in(root, "tmp/fadvise-shim", "dd.")
        .expect("dd dumped at exit into the root's dump directory");
    let fadvise = dd.stats.call(Call::PosixFadvise);
    assert!(
        fadvise.dropped > 0 && fadvise.passed() == 0,
        "{:?}",
        dd.stats
    );
    assert_eq!(dd.policy, "/etc/fadvise-shim/policy.toml");

    // deploy/prometheus: the textfile collector's command, run in the root.
    let textfile = "/var/lib/node_exporter/textfile_collector/fadvise_shim.prom";
    Run::of(&mut in_chroot(
        root,
        &[
            "/bin/sh",
            "-c",
            &format!(
                "mkdir -p {dir} && fadvise-shim report --format prometheus --output {textfile} /tmp/fadvise-shim",
                dir = Path::new(textfile).parent().unwrap().display()
            ),
        ],
    ))
    .success("report for the textfile collector");
    let metrics = root.join(textfile.trim_start_matches('/'));
    assert!(std::fs::read_to_string(&metrics)
        .unwrap()
        .contains("posix_fadvise"));
    let promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&metrics).unwrap())
        .output();
    match promtool {
        Ok(output) => assert!(output.status.success(), "promtool: {output:?}"),
        Err(error) => eprintln!("promtool not run ({error}); scripts/setup.sh installs it"),
    }
    std::fs::remove_dir_all(root.join("var/lib/node_exporter")).unwrap();

    // The setuid probe, started as nobody: secure execution, shim loaded,
    // and a SIGUSR1 from outside makes it dump into the root.
    let mut child = in_chroot_as(root, "65534:65534", &["/usr/local/bin/install-probe"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pid: i32 = line
        .strip_prefix("pid=")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("probe said {line:?}"));
    assert!(
        line.ends_with(" secure=1 shim=1 fsync=1\n"),
        "probe said {line:?}"
    );
    // SAFETY: kill has no memory-safety requirement; pid is our grandchild.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR1) }, 0);
    let name = format!("install-probe.{pid}.");
    let deadline = Instant::now() + Duration::from_secs(30);
    let dump = loop {
        if let Some(dump) = dump_in(root, "tmp/fadvise-shim", &name) {
            break dump;
        }
        assert!(
            Instant::now() < deadline,
            "no dump from the setuid probe after SIGUSR1"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    assert_eq!(dump.signal, "SIGUSR1");
    assert_eq!(dump.stats.call(Call::Fsync).count(), 1);

    // Root's processes kept their statistics in the stats directory install
    // made; uninstall leaves it (it is gone at the next boot) while it holds
    // them, and takes out everything else.
    let stats_dir = root.join("run/fadvise-shim");
    let report = Run::of(&mut fadvise_shim(&["report", stats_dir.to_str().unwrap()]))
        .success("report of the root's stats directory");
    assert!(report.stdout.contains("fsync"), "{report}");
    let run = uninstall(root).success("uninstall");
    assert!(
        run.stderr
            .contains("kept /run/fadvise-shim/: it holds statistics"),
        "{run}"
    );
    assert!(!root.join(PRELOAD).exists());
    assert_eq!(shim_loaded_in_sh_and_grep(root), [0, 0]);
    std::fs::remove_dir_all(&stats_dir).unwrap();
    assert_same_tree(
        &before,
        &snapshot(root, &VOLATILE, false),
        "root after uninstall",
    );
}

/// What deploy/Dockerfile does: copy the CLI and the library into the image,
/// run `install --root / --preload global` inside it, delete the copies.
#[test]
fn the_dockerfile_steps_work_inside_a_debian_root() {
    let Some(root) = debian_root_or_skip("Dockerfile steps") else {
        return;
    };
    let root = root.path();
    let triplet = format!("{}-linux-gnu", std::env::consts::ARCH);
    let original = format!("# site preloads\n/usr/lib/{triplet}/libgcc_s.so.1\n");
    std::fs::write(root.join(PRELOAD), &original).unwrap();
    let before = snapshot(root, &VOLATILE, false);

    let stage = root.join("tmp/fadvise-shim-install");
    std::fs::create_dir_all(&stage).unwrap();
    std::fs::copy(cli(), stage.join("fadvise-shim")).unwrap();
    std::fs::copy(library(), stage.join("libfadvise_shim.so")).unwrap();
    Run::of(&mut in_chroot(
        root,
        &[
            "/bin/sh",
            "-c",
            "/tmp/fadvise-shim-install/fadvise-shim install --root / --preload global \
             && rm -r /tmp/fadvise-shim-install",
        ],
    ))
    .success("install inside the root");
    assert_eq!(
        std::fs::read_to_string(root.join(PRELOAD)).unwrap(),
        format!("{LIBRARY_INSIDE}\n{original}")
    );
    let loaded = shim_loaded_in_sh_and_grep(root);
    assert!(loaded.iter().all(|&lines| lines > 0), "{loaded:?}");
    Run::of(&mut in_chroot(
        root,
        &["fadvise-shim", "check", "/etc/fadvise-shim/policy.toml"],
    ))
    .success("the installed CLI checks the installed policy");

    // Installing again, now from the installed CLI, changes nothing.
    let installed = snapshot(root, &VOLATILE, true);
    Run::of(&mut in_chroot(
        root,
        &[
            "fadvise-shim",
            "install",
            "--root",
            "/",
            "--preload",
            "global",
        ],
    ))
    .success("second install");
    assert_same_tree(
        &installed,
        &snapshot(root, &VOLATILE, true),
        "second install",
    );

    Run::of(&mut in_chroot(
        root,
        &["fadvise-shim", "uninstall", "--root", "/"],
    ))
    .success("uninstall inside the root");
    assert_eq!(
        std::fs::read_to_string(root.join(PRELOAD)).unwrap(),
        original
    );
    assert_same_tree(
        &before,
        &snapshot(root, &VOLATILE, false),
        "root after uninstall",
    );
}

/// The .deb, built with scripts/build-deb.sh and installed with dpkg in a
/// Debian root: its files, the policy as a conffile, and no ld.so.preload
/// until the documented deliberate step.
#[test]
fn the_debian_package_installs_files_and_leaves_ld_so_preload_to_a_deliberate_step() {
    let in_release = cli().parent().is_some_and(|dir| dir.ends_with("release"));
    if !in_release {
        eprintln!("SKIPPED debian package: it packages target/release; run cargo test --release");
        return;
    }
    let scratch = scratch();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-deb.sh");
    let output_dir = format!("{}/", scratch.path().display());
    let build =
        Run::of(std::process::Command::new(&script).args(["--no-build", "--output", &output_dir]));
    if build.code == Some(3) {
        eprintln!("SKIPPED debian package: {}", build.stderr.trim());
        return;
    }
    let build = build.success("scripts/build-deb.sh");
    let deb = build.stdout.lines().last().unwrap().trim().to_string();
    let conffiles =
        Run::of(std::process::Command::new("dpkg-deb").args(["--info", &deb, "conffiles"]))
            .success("dpkg-deb --info");
    assert_eq!(conffiles.stdout, "/etc/fadvise-shim/policy.toml\n");

    let Some(root) = debian_root_or_skip("debian package in a Debian root") else {
        return;
    };
    let root = root.path();
    std::fs::copy(&deb, root.join("tmp/fadvise-shim.deb")).unwrap();
    Run::of(&mut in_chroot(
        root,
        &["dpkg", "-i", "/tmp/fadvise-shim.deb"],
    ))
    .success("dpkg -i");
    assert_eq!(mode(&root.join("usr/bin/fadvise-shim")), 0o755);
    assert_eq!(
        mode(&root.join(LIBRARY_INSIDE.trim_start_matches('/'))),
        0o755
    );
    assert_eq!(
        std::fs::read(root.join("etc/fadvise-shim/policy.toml")).unwrap(),
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("policy.example.toml")).unwrap()
    );
    assert!(
        !root.join(PRELOAD).exists(),
        "the package alone does not enable the shim"
    );
    // Root's default stats directory, made by root at install and at boot
    // (tmpfiles.d), so no other user can make it first.
    assert_eq!(mode(&root.join("run/fadvise-shim")), 0o755);
    assert!(root.join("usr/lib/tmpfiles.d/fadvise-shim.conf").is_file());
    assert_eq!(shim_loaded_in_sh_and_grep(root), [0, 0]);
    Run::of(&mut in_chroot(
        root,
        &["fadvise-shim", "check", "/etc/fadvise-shim/policy.toml"],
    ))
    .success("packaged CLI");

    // The deliberate step; uninstall then takes out the line and leaves the
    // package's files to dpkg.
    let run = Run::of(&mut in_chroot(
        root,
        &[
            "fadvise-shim",
            "install",
            "--root",
            "/",
            "--preload",
            "global",
        ],
    ))
    .success("install --root / --preload global");
    assert!(
        run.stderr
            .contains("/usr/lib/fadvise-shim/libfadvise_shim.so is up to date"),
        "{run}"
    );
    let loaded = shim_loaded_in_sh_and_grep(root);
    assert!(loaded.iter().all(|&lines| lines > 0), "{loaded:?}");
    Run::of(&mut in_chroot(
        root,
        &["fadvise-shim", "uninstall", "--root", "/"],
    ))
    .success("uninstall");
    assert!(!root.join(PRELOAD).exists());
    assert!(
        root.join(LIBRARY_INSIDE.trim_start_matches('/')).exists(),
        "dpkg's file stays"
    );
    Run::of(&mut in_chroot(root, &["dpkg", "--purge", "fadvise-shim"])).success("dpkg --purge");
    assert!(!root.join("usr/lib/fadvise-shim").exists());
    assert!(!root.join("etc/fadvise-shim").exists());
}

/// What deploy/kubernetes.yaml does: the library copied into a volume of its
/// own (the init container), LD_PRELOAD and FADVISE_SHIM_POLICY set, and the
/// policy from the example's ConfigMap laid out as the kubelet mounts it: a
/// `..data` symlink to a timestamped directory, and the file a symlink
/// through it.
#[test]
fn the_kubernetes_layout_applies_the_configmap_policy() {
    let Some(root) = debian_root_or_skip("Kubernetes layout") else {
        return;
    };
    let root = root.path();
    let volume = root.join("opt/fadvise-shim");
    std::fs::create_dir_all(&volume).unwrap();
    std::fs::copy(library(), volume.join("libfadvise_shim.so")).unwrap();

    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes.yaml"),
    )
    .unwrap();
    let policy: String = example
        .lines()
        .skip_while(|line| line.trim() != "policy.toml: |")
        .skip(1)
        .take_while(|line| line.is_empty() || line.starts_with("    "))
        .map(|line| format!("{}\n", line.strip_prefix("    ").unwrap_or(line)))
        .collect();
    assert!(
        policy.contains("action = \"drop\""),
        "policy from the ConfigMap:\n{policy}"
    );
    let mount = root.join("etc/fadvise-shim");
    let version = mount.join("..2025_01_01_00_00_00.000000001");
    std::fs::create_dir_all(&version).unwrap();
    std::fs::write(version.join("policy.toml"), policy).unwrap();
    std::os::unix::fs::symlink("..2025_01_01_00_00_00.000000001", mount.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/policy.toml", mount.join("policy.toml")).unwrap();
    std::fs::create_dir_all(root.join("run/fadvise-shim")).unwrap();

    Run::of(&mut in_chroot(
        root,
        &[
            "env",
            "LD_PRELOAD=/opt/fadvise-shim/libfadvise_shim.so",
            "FADVISE_SHIM_POLICY=/etc/fadvise-shim/policy.toml",
            "FADVISE_SHIM_ON_EXIT=1",
            "dd",
            "if=/dev/zero",
            "of=/tmp/x",
            "bs=64k",
            "count=100",
            "oflag=nocache",
        ],
    ))
    .success("dd with the Kubernetes settings");
    let dd = dump_in(root, "run/fadvise-shim", "dd.").expect("dd dumped into the dump volume");
    let fadvise = dd.stats.call(Call::PosixFadvise);
    assert!(
        fadvise.dropped > 0 && fadvise.passed() == 0,
        "{:?}",
        dd.stats
    );
}
