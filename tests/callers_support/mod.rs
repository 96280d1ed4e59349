//! The call-site test program of `tests/c_callers/`, built for the tests
//! that use it (tests/callers.rs, tests/containers.rs): `callers` linking
//! `liba.so` and `libb.so` (by soname, found through its run path), and the
//! two plugins it loads and unloads, all from one source; and the report
//! they are judged by (also tests/callers_real.rs's).

// Each test binary uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{clean_command, cli, compile_c};

/// `report --by caller --format json PATH`, which must succeed.
pub fn report_by_caller(path: &Path) -> Value {
    let output = clean_command(cli())
        .args(["report", "--by", "caller", "--format", "json"])
        .arg(path)
        .output()
        .expect("report runs");
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).expect("json")
}

/// The report's `groups`.
pub fn groups(report: &Value) -> impl Iterator<Item = &Value> {
    report["groups"].as_array().expect("groups").iter()
}

pub struct Programs {
    pub callers: PathBuf,
    /// Racing threads and a forked child (`threads.c`).
    pub threads: PathBuf,
    /// Calls from both libraries over time (`ticker.c`).
    pub ticker: PathBuf,
    pub liba: PathBuf,
    pub libb: PathBuf,
    pub plugin_one: PathBuf,
    pub plugin_two: PathBuf,
}

/// The programs; `callers` finds its libraries where they were built, or
/// in `run_path` (e.g. where a container mounts them).
pub fn programs(run_path: Option<&str>) -> Programs {
    let library = |name: &str, output: &str| {
        let soname = format!("-Wl,-soname,{output}");
        compile_c("c_callers", name, output, &["-shared", "-fPIC", &soname])
    };
    let liba = library("liba", "liba.so");
    let libb = library("libb", "libb.so");
    let plugin_one = library("plugin", "plugin_one.so");
    let plugin_two = library("plugin", "plugin_two.so");
    let dir = |path: &PathBuf| path.parent().unwrap().to_str().unwrap().to_owned();
    let run_path = run_path.map_or_else(|| format!("{}:{}", dir(&liba), dir(&libb)), str::to_owned);
    let callers = compile_c(
        "c_callers",
        "callers",
        "callers",
        &[
            liba.to_str().unwrap(),
            libb.to_str().unwrap(),
            &format!("-Wl,-rpath,{run_path}"),
            "-ldl",
        ],
    );
    let linked = |name: &str| {
        compile_c(
            "c_callers",
            name,
            name,
            &[
                liba.to_str().unwrap(),
                libb.to_str().unwrap(),
                &format!("-Wl,-rpath,{run_path}"),
            ],
        )
    };
    Programs {
        callers,
        threads: linked("threads"),
        ticker: linked("ticker"),
        liba,
        libb,
        plugin_one,
        plugin_two,
    }
}
