//! Round trips through the writer and the reader together: what one
//! writes, the other reads back count for count, and what no writer
//! writes is refused.

use super::*;
use crate::call::Call;
use crate::histogram::index_of;
use crate::origin::OriginRef;
use crate::sites::{Module, SiteKey, SiteStats};
use crate::stats::Snapshot;

fn sample() -> Snapshot {
    let mut snapshot = Snapshot::default();
    let fadvise = snapshot.call_mut(Call::PosixFadvise);
    fadvise.buckets[index_of(380)] = 900;
    fadvise.buckets[index_of(2_500_000)] = 3;
    fadvise.dropped = 1000;
    fadvise.errors = 2;
    snapshot.call_mut(Call::Fsync).limited = 7;
    let mut site = SiteStats {
        dropped: 400,
        errors: 1,
        ..SiteStats::default()
    };
    site.buckets[crate::sites::coarse_bucket(380)] = 500;
    let module = Module {
        path: "/usr/lib/x86_64-linux-gnu/libglog.so.1".into(),
        build_id: "a1b2c3".into(),
    };
    let key = |address| SiteKey {
        call: Call::PosixFadvise,
        module: Some(module.clone()),
        address,
    };
    snapshot.sites.add(key(0x1a3), &site);
    snapshot.sites.add(key(0x2f0), &site);
    let unknown = SiteKey {
        module: None,
        ..key(0x7f00_1234)
    };
    snapshot.sites.add(unknown, &site);
    snapshot
}

fn written(snapshot: &Snapshot, exe: &[u8]) -> String {
    let header = Header {
        origin: OriginRef {
            pid: 4242,
            nonce: 77,
            exe,
            ..OriginRef::default()
        },
        ppid: 1,
        policy: b"built-in",
        signal: "SIGUSR1",
        reason: Reason::Signal,
        unix_time: 1_764_000_000,
        budgets: &[BudgetUse {
            name: b"fsync storm",
            rate: 300.0,
            burst: 30.5,
            admitted: 630,
            refused: 12,
        }],
        processes: 1,
        absorbed: &[],
        stats_dir: Some((2049, 131)),
    };
    let mut out = Vec::new();
    write_dump(&mut out, &header, snapshot);
    String::from_utf8(out).unwrap()
}

#[test]
fn sites_of_the_main_program_are_named_by_its_executable() {
    let mut snapshot = Snapshot::default();
    snapshot.call_mut(Call::Fsync).dropped = 2;
    let mut text = written(&snapshot, b"/usr/bin/dd");
    let end = text.rfind("end\n").unwrap();
    text.insert_str(
        end,
        "module 0 build_id= path=\nsite fsync 0 0x10 dropped=2 limited=0 errors=0 buckets=\n",
    );
    let dump = parse_dump(&text).unwrap();
    let (key, stats) = dump.stats.sites.sites.iter().next().unwrap();
    assert_eq!(key.module.as_ref().unwrap().path, "/usr/bin/dd");
    assert_eq!((key.address, stats.dropped), (0x10, 2));
}

#[test]
fn bad_site_lines_are_refused() {
    let good = written(&sample(), b"/usr/bin/dd");
    for (bad, line) in [
        (
            "site fsync 9 0x10 dropped=0 limited=0 errors=0 buckets=",
            "site",
        ),
        (
            "site nosuch 0 0x10 dropped=0 limited=0 errors=0 buckets=",
            "site",
        ),
        (
            "site fsync 0 10 dropped=0 limited=0 errors=0 buckets=",
            "site",
        ),
        (
            "site fsync 0 0x10 dropped=0 limited=0 errors=1 buckets=",
            "site",
        ),
        (
            "site fsync 0 0x10 dropped=0 limited=0 errors=0 buckets=15:1",
            "site",
        ),
        (
            "site fsync 0 0x10 dropped=x limited=0 errors=0 buckets=",
            "site",
        ),
        (
            "site fsync 0 0x10 dropped=0 limited=0 errors=0 buckets= extra",
            "site",
        ),
        ("module 0 build_id=a1b2c3 path=/again", "module"),
        ("module 1 build_id=xyz path=/x", "module"),
    ] {
        let end = good.rfind("end\n").unwrap();
        let mut text = good.clone();
        text.insert_str(end, &format!("{bad}\n"));
        let error = parse_dump(&text).unwrap_err();
        assert!(error.message.contains(line), "{bad}: {error}");
    }
}

#[test]
fn round_trip_keeps_every_count() {
    let snapshot = sample();
    let text = written(&snapshot, b"/usr/bin/dd");
    let dump = parse_dump(&text).unwrap();
    assert_eq!(dump.stats, snapshot);
    let budget = Budget {
        name: "fsync storm".into(),
        rate: 300.0,
        burst: 30.5,
        admitted: 630,
        refused: 12,
    };
    assert_eq!(dump.budgets, vec![budget]);
    assert_eq!((dump.origin.nonce, dump.stats_dir), (77, Some((2049, 131))));
    assert_eq!(
        (dump.origin.pid, dump.exe_name(), dump.signal.as_str()),
        (4242, "dd", "SIGUSR1")
    );
    assert!(text.contains("posix_fadvise"), "{text}");
    assert!(!text.contains("readahead"), "only calls made are listed");
}

#[test]
fn table_is_readable() {
    let text = written(&sample(), b"/bin/x");
    let row = text
        .lines()
        .find(|l| l.starts_with("posix_fadvise "))
        .unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &cells[..6],
        &["posix_fadvise", "1903", "903", "1000", "0", "2"]
    );
    assert_eq!(cells[6], "381ns");
    assert_eq!(cells[10], "2.51ms");
}

#[test]
fn hostile_exe_cannot_forge_lines() {
    let text = written(&sample(), b"/tmp/x\nstats fsync dropped=99\n");
    let dump = parse_dump(&text).unwrap();
    assert_eq!(dump.stats.call(Call::Fsync).dropped, 0);
}

#[test]
fn truncated_or_foreign_files_are_refused() {
    let text = written(&sample(), b"/bin/x");
    let cut = &text[..text.len() - 4];
    assert!(parse_dump(cut).unwrap_err().message.contains("cut short"));
    assert!(parse_dump("hello\n").is_err());
    assert!(parse_dump(&text.replace(" 2\n", " 3\n")).is_err());
    assert!(parse_dump(&text.replace("dropped=1000", "dropped=x")).is_err());
    assert!(parse_dump(&text.replace("stats_dir 2049:131", "stats_dir 2049")).is_err());
    let old = parse_dump(
        &text
            .replace("nonce 77\n", "")
            .replace("stats_dir 2049:131\n", ""),
    );
    let old = old.unwrap();
    assert_eq!((old.origin.identity(), old.stats_dir), (None, None));
}
