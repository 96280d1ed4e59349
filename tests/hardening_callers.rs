//! Callers the shim does not choose (issue 6, points 4 and 5): other
//! preload libraries on either side of it (`nocache` before, `libeatmydata`
//! after), calls from another library's constructor before the shim has
//! initialised, `vfork` and `posix_spawn` children, chains of `exec`, and a
//! program that closes every descriptor, stdin to stderr, before it starts.
//! Each is judged by what the program prints and returns, what the kernel
//! saw (`strace`), and the dumps.

mod common;
mod hardening;

use std::ffi::OsString;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use common::{counts, library, run, Scratch, Shim, DROP_ALL, TIMEOUT};
use fadvise_shim_core::call::Call;
use fadvise_shim_core::dump::Dump;
use fadvise_shim_core::policy::ON_EXIT_ENV;

const NOCACHE: &str = "/usr/lib/nocache/nocache.so";
const EATMYDATA: &str = "/usr/lib/x86_64-linux-gnu/libeatmydata.so";

fn preload(libraries: &[&Path]) -> OsString {
    let joined: Vec<_> = libraries.iter().map(|path| path.as_os_str()).collect();
    joined.join(std::ffi::OsStr::new(":"))
}

fn only_dump(scratch: &Scratch) -> Dump {
    let mut dumps = scratch.dumps();
    assert_eq!(dumps.len(), 1, "{:?}", scratch.dump_dir_listing());
    dumps.remove(0).1
}

/// A 2 MB file on a real file system, not in the page cache: `nocache`
/// only drops pages that were not cached when the file was opened.
fn uncached_file(scratch: &Scratch) -> PathBuf {
    let path = scratch.file("uncached");
    let file = std::fs::File::create(&path).unwrap();
    file.write_all_at(&vec![7u8; 2_000_000], 0).unwrap();
    file.sync_all().unwrap();
    // SAFETY: a valid descriptor; plain system call.
    let dropped = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(dropped, 0);
    path
}

#[test]
fn nocache_before_the_shim_has_its_calls_seen() {
    if !Path::new(NOCACHE).exists() {
        eprintln!("SKIPPED: {NOCACHE} is missing (Debian package nocache)");
        return;
    }
    let Some(scratch) = Scratch::on_real_fs() else {
        eprintln!("SKIPPED: no real file system for the page cache");
        return;
    };
    let dontneed = |lines: &[String]| lines.iter().filter(|l| l.contains("DONTNEED")).count();
    // Alone, nocache drops the file's pages when it is closed.
    let file = uncached_file(&scratch);
    let mut alone = scratch.command("cat", Shim::Off);
    alone.arg(&file).env("LD_PRELOAD", NOCACHE);
    let (finished, kernel) = hardening::traced(&scratch, "alone.log", "fadvise64", &mut alone);
    finished.assert_success("cat under nocache");
    let nocache_calls = dontneed(&kernel);
    assert!(
        nocache_calls >= 1,
        "nocache made no DONTNEED call: {kernel:?}"
    );

    // Before the shim, with a policy dropping DONTNEED: the shim sees them
    // all, and the kernel none.
    let file = uncached_file(&scratch);
    let policy = "[[rule]]\ncall = \"posix_fadvise\"\nadvice = \"dontneed\"\naction = \"drop\"\n";
    let mut both = scratch.command("cat", Shim::Policy(policy));
    both.arg(&file)
        .env("LD_PRELOAD", preload(&[Path::new(NOCACHE), &library()]))
        .env(ON_EXIT_ENV, "1");
    let (finished, kernel) = hardening::traced(&scratch, "both.log", "fadvise64", &mut both);
    finished.assert_success("cat under nocache and the shim");
    assert_eq!(finished.stdout.trim_end_matches('\n').len(), 2_000_000);
    assert_eq!(
        dontneed(&kernel),
        0,
        "a DONTNEED reached the kernel: {kernel:?}"
    );
    let dump = only_dump(&scratch);
    let fadvise = dump.stats.call(Call::PosixFadvise);
    assert_eq!(fadvise.dropped, nocache_calls as u64);
    // Every other fadvise (nocache's NOREUSE, cat's SEQUENTIAL) passed.
    assert_eq!(fadvise.passed(), kernel.len() as u64, "{kernel:?}");
}

#[test]
fn libeatmydata_after_the_shim_receives_the_passed_calls() {
    if !Path::new(EATMYDATA).exists() {
        eprintln!("SKIPPED: {EATMYDATA} is missing (Debian package libeatmydata1)");
        return;
    }
    let scratch = Scratch::new();
    let calls = |libraries: &[&Path], log: &str| {
        let mut command = scratch.command(hardening::program("calls"), Shim::Default);
        command
            .arg(scratch.file("data"))
            .args(["0", "5"])
            .env("LD_PRELOAD", preload(libraries))
            .env(ON_EXIT_ENV, "1");
        let (finished, kernel) = hardening::traced(&scratch, log, "fsync,fdatasync", &mut command);
        finished.assert_success("calls");
        assert_eq!(finished.stdout, "fadvise 0/0 fsync 5/5\n");
        kernel
    };
    // The control: with the shim alone, the kernel sees every fsync.
    assert_eq!(calls(&[&library()], "shim.log").len(), 5);
    std::fs::remove_dir_all(scratch.dump_dir()).unwrap();
    std::fs::create_dir(scratch.dump_dir()).unwrap();
    let kernel = calls(&[&library(), Path::new(EATMYDATA)], "eatmydata.log");
    assert_eq!(kernel, Vec::<String>::new(), "libeatmydata was skipped");
    let dump = only_dump(&scratch);
    assert_eq!(counts(dump.stats.call(Call::Fsync)), (5, 5, 0, 0, 0));
}

/// `early_main` linked against libearly.so, plus that library's path.
fn early_programs() -> (PathBuf, PathBuf) {
    let library = hardening::build("early", "libearly.so", &["-shared", "-fPIC"]);
    let dir = library.parent().unwrap().to_str().unwrap().to_string();
    let program = hardening::build(
        "early_main",
        "early_main",
        &[&format!("-L{dir}"), "-learly", &format!("-Wl,-rpath,{dir}")],
    );
    (program, library)
}

#[test]
fn calls_from_another_librarys_constructor_work_and_are_counted() {
    let (program, early) = early_programs();
    let shim = library();
    let orders: [(&str, Vec<&Path>); 3] = [
        ("early library preloaded first", vec![&early, &shim]),
        ("shim preloaded first", vec![&shim, &early]),
        ("early library only linked", vec![&shim]),
    ];
    let expected_output = "early fadvise 0 EINVAL fsync 0 0 -1 EBADF\nmain fsync 0\n";
    let mut before_the_shim = 0;
    for (policy, passed) in [(None, true), (Some(DROP_ALL), false)] {
        for (order, libraries) in &orders {
            let scratch = Scratch::new();
            let shim_mode = policy.map_or(Shim::Default, Shim::Policy);
            let mut command = scratch.command(&program, shim_mode);
            command
                .arg(scratch.file("main-data"))
                .env("EARLY_FILE", scratch.file("early-data"))
                .env("LD_PRELOAD", preload(libraries))
                .env(ON_EXIT_ENV, "1");
            let finished = run(&mut command, TIMEOUT);
            finished.assert_success(order);
            let (ready, rest) = finished.stdout.split_once('\n').unwrap();
            if ready == "early shim-ready no" {
                before_the_shim += 1;
            }
            assert_eq!(rest, expected_output, "{order}: {finished}");
            let dump = only_dump(&scratch);
            let (fadvise, fsync) = (
                dump.stats.call(Call::PosixFadvise),
                dump.stats.call(Call::Fsync),
            );
            if passed {
                assert_eq!(counts(fadvise), (2, 2, 0, 0, 1), "{order}");
                assert_eq!(counts(fsync), (3, 3, 0, 0, 1), "{order}");
            } else {
                assert_eq!(counts(fadvise), (2, 0, 2, 0, 0), "{order}");
                assert_eq!(counts(fsync), (3, 0, 3, 0, 0), "{order}");
            }
        }
    }
    assert!(
        before_the_shim > 0,
        "no order ran the constructor before the shim's"
    );
}

#[test]
fn vfork_children_leave_the_parents_dump_alone() {
    let scratch = Scratch::new();
    let mut command = scratch.command(hardening::program("vfork_exit"), Shim::Default);
    command
        .arg(scratch.file("data"))
        .arg("/bin/true")
        .env(ON_EXIT_ENV, "1");
    let mut running = common::Running::start(&mut command);
    let pid = running.pid();
    running.wait_for_line(TIMEOUT, |line| line.starts_with("child1 "));
    let finished = running.wait(TIMEOUT);
    finished.assert_success("vfork_exit");
    assert_eq!(finished.stdout, "child1 0 child2 0\n");
    let listing = scratch.dump_dir_listing();
    assert!(
        listing.len() == 1 && common::is_dump_of(&listing[0], "vfork_exit", pid),
        "{listing:?}"
    );
    let dump = only_dump(&scratch);
    assert_eq!(dump.origin.pid, pid);
    assert_eq!(counts(dump.stats.call(Call::Fsync)), (7, 7, 0, 0, 0));
    assert_eq!(counts(dump.stats.call(Call::PosixFadvise)), (5, 5, 0, 0, 0));
}

#[test]
fn posix_spawn_children_dump_their_own_calls() {
    let scratch = Scratch::new();
    let mut command = scratch.command(hardening::program("spawn"), Shim::Default);
    command
        .arg(scratch.file("parent-data"))
        .arg(hardening::program("calls"))
        .arg(scratch.file("child-data"))
        .args(["3", "4"])
        .env(ON_EXIT_ENV, "1");
    let finished = run(&mut command, TIMEOUT);
    finished.assert_success("spawn");
    assert_eq!(finished.stdout, "fadvise 3/3 fsync 4/4\nchild 0\n");
    let dumps = scratch.dumps();
    assert_eq!(dumps.len(), 2, "{:?}", scratch.dump_dir_listing());
    let of = |name: &str| {
        &dumps
            .iter()
            .find(|(file, _)| file.starts_with(name))
            .unwrap()
            .1
    };
    let (parent, child) = (of("spawn."), of("calls."));
    assert_eq!(child.ppid, parent.origin.pid);
    assert_eq!(counts(parent.stats.call(Call::Fsync)), (2, 2, 0, 0, 0));
    assert!(parent.stats.call(Call::PosixFadvise).is_empty());
    assert_eq!(counts(child.stats.call(Call::Fsync)), (4, 4, 0, 0, 0));
    assert_eq!(
        counts(child.stats.call(Call::PosixFadvise)),
        (3, 3, 0, 0, 0)
    );
}

#[test]
fn chain_of_execs_ends_in_one_dump_with_every_call() {
    let Some(scratch) = Scratch::on_real_fs() else {
        eprintln!("SKIPPED: no real file system for dd's nocache calls");
        return;
    };
    let input = scratch.file("input");
    std::fs::write(&input, vec![1u8; 1 << 20]).unwrap();
    let chain = |shim: Shim| {
        let mut command = scratch.command("sh", shim);
        command
            .arg("-c")
            .arg("exec sh -c 'exec dd if=\"$1\" of=/dev/null bs=64k iflag=nocache' dd \"$1\"")
            .arg("sh")
            .arg(&input)
            .env(ON_EXIT_ENV, "1");
        command
    };
    // What dd asks of the kernel without the shim.
    let (plain, kernel) =
        hardening::traced(&scratch, "plain.log", "fadvise64", &mut chain(Shim::Off));
    plain.assert_success("dd chain without the shim");
    assert!(!kernel.is_empty());
    let running = common::Running::start(&mut chain(Shim::Default));
    let pid = running.pid();
    let finished = running.wait(TIMEOUT);
    finished.assert_success("dd chain");
    // exec keeps the pid: the one dump is dd's, under the first shell's pid.
    let listing = scratch.dump_dir_listing();
    assert!(
        listing.len() == 1 && common::is_dump_of(&listing[0], "dd", pid),
        "{listing:?}"
    );
    let dump = only_dump(&scratch);
    assert!(dump.origin.exe.ends_with("/dd"), "{}", dump.origin.exe);
    let fadvise = dump.stats.call(Call::PosixFadvise);
    assert_eq!(
        counts(fadvise),
        (kernel.len() as u64, kernel.len() as u64, 0, 0, 0)
    );
}

#[test]
fn program_that_closes_every_descriptor_first() {
    let scratch = Scratch::new();
    let files = scratch.file("files");
    std::fs::create_dir(&files).unwrap();
    let mut command = scratch.command(hardening::program("closefds"), Shim::Default);
    command.arg(&files).env(ON_EXIT_ENV, "1");
    let finished = run(&mut command, TIMEOUT);
    finished.assert_success("closefds");
    for fd in 0..3 {
        let text = std::fs::read_to_string(files.join(format!("fd{fd}"))).unwrap();
        assert_eq!(text, "first\nlast\n", "fd{fd}");
    }
    let dump = only_dump(&scratch);
    assert_eq!(counts(dump.stats.call(Call::Fsync)), (3, 3, 0, 0, 0));
    assert_eq!(counts(dump.stats.call(Call::PosixFadvise)), (2, 2, 0, 0, 0));
}

/// The same program when its dump cannot be written: the shim's one line
/// for stderr must not land in the file that now holds descriptor 2.
#[test]
fn warning_never_lands_in_a_file_that_took_descriptor_2() {
    let scratch = Scratch::new();
    let files = scratch.file("files");
    std::fs::create_dir(&files).unwrap();
    let mut command = scratch.command(hardening::program("closefds"), Shim::Default);
    command
        .arg(&files)
        .env(ON_EXIT_ENV, "1")
        .env(fadvise_shim_core::policy::DUMP_DIR_ENV, "relative/dir");
    run(&mut command, TIMEOUT).assert_success("closefds");
    for fd in 0..3 {
        let text = std::fs::read_to_string(files.join(format!("fd{fd}"))).unwrap();
        assert_eq!(text, "first\nlast\n", "fd{fd}");
    }
}
