#!/usr/bin/env python3
"""The benchmark driver behind scripts/bench.sh (issue 5).

bench.sh builds the project and compiles the C workloads; this file runs
them. Every comparison alternates its arms (A B C A B C ...) so that drift
on the machine hits every arm alike, takes the median of each arm, and
divides by the baseline arm measured in the same rounds. The result is one
Markdown table: case, arm, median, ratio to baseline, target, verdict.
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

SHIM_VARIABLES = ("LD_PRELOAD", "FADVISE_SHIM_POLICY", "FADVISE_SHIM_DUMP_DIR", "FADVISE_SHIM_ON_EXIT",
                  "FADVISE_SHIM_STATS_DIR")
EATMYDATA = "/usr/lib/x86_64-linux-gnu/libeatmydata.so"

# Sizes of a full run and of a --quick smoke run.
# `loop` is the most calls a loop run makes; a slow call gets fewer, so that
# no run takes much longer than `run_seconds`.
FULL = dict(rounds=7, loop=2_000_000, run_seconds=1.0, writers=4, lines=150_000,
            glog_lines=100_000, spawns=1_000, forks=2_000, scenario_rounds=5)
QUICK = dict(rounds=5, loop=200_000, run_seconds=0.05, writers=4, lines=15_000,
             glog_lines=10_000, spawns=100, forks=200, scenario_rounds=5)

POLICIES = {
    "drop-fadvise": '[[rule]]\ncall = "posix_fadvise"\naction = "drop"\n',
    "drop-fdatasync": '[[rule]]\ncall = "fdatasync"\naction = "drop"\n',
    "drop-dontneed": '[[rule]]\ncall = "posix_fadvise"\nadvice = "dontneed"\naction = "drop"\n',
    "path-rule": '[[rule]]\ncall = "posix_fadvise"\npath = ["/nonexistent/**"]\naction = "drop"\n',
    # Issue 17: a path rule that covers the loop's file ({work}) and drops.
    "path-match-rule": '[[rule]]\ncall = "posix_fadvise"\npath = ["{work}/**"]\naction = "drop"\n',
    "exe-rule": '[[rule]]\ncall = "posix_fadvise"\nexe = ["nomatch"]\naction = "drop"\n',
    "caller-rule": '[[rule]]\ncall = "posix_fadvise"\ncaller = ["nomatch"]\naction = "drop"\n',
    "limit-rule": '[[rule]]\ncall = "posix_fadvise"\naction = "limit"\nrate = 1000000000\nburst = 1000000000\n',
    # Case 7: the same limit (every call passes) with one budget per process,
    # and with one budget for the host ({limits} becomes the work directory).
    "process-budget": '[[rule]]\nname = "bench"\ncall = "posix_fadvise"\naction = "limit"\nrate = 1000000000\nburst = 1000000000\n',
    "host-budget": '[limits]\ndir = "{limits}"\n\n[[rule]]\nname = "bench"\ncall = "posix_fadvise"\naction = "limit"\nrate = 1000000000\nburst = 1000000000\nscope = "host"\n',
}


# The cases in the order a full run takes them: name for --cases, method.
CASES = {"loop": "case_loop", "fdatasync": "case_fdatasync", "scenario": "case_scenario",
         "tools": "case_tools", "startup": "case_startup", "host-budget": "case_host_budget",
         "musl": "case_musl", "fork": "case_fork"}


def log(message):
    print(f"bench: {message}", file=sys.stderr, flush=True)


class Bench:
    def __init__(self, args):
        self.bin = Path(args.bin)
        self.work = Path(args.work)
        self.shim = str(Path(args.shim).resolve())
        # Another build of the library (e.g. from the commit before a
        # change), measured in the same rounds as this one's observing arm.
        self.compare_shim = str(Path(args.compare_shim).resolve()) if args.compare_shim else None
        self.cli = str(Path(args.cli).resolve())
        self.example_policy = Path(args.example_policy)
        self.floors = Path(args.floors)
        self.stats_dir = str(Path(args.stats_dir).resolve())
        self.size = dict(QUICK if args.quick else FULL)
        if args.rounds:
            self.size.update(rounds=args.rounds, scenario_rounds=args.rounds)
        self.rows = []
        self.header = None
        self.notes = []
        self.dump_serial = 0
        self.loop_samples = {}  # case 1's samples, which case 4 reads (empty if it did not run)
        self.policies = {}
        for name, text in POLICIES.items():
            path = self.work / f"{name}.toml"
            path.write_text(text.replace("{limits}", str(self.work / "budgets"))
                            .replace("{work}", str(self.work.resolve())))
            self.policies[name] = str(path)
        self.check_policies()

    # ---- environment and processes -------------------------------------

    def env(self, preload=None, policy=None, on_exit=False, dump_dir=None, stats_dir=None):
        """A clean environment: no inherited shim variables, then the arm's."""
        env = {k: v for k, v in os.environ.items() if k not in SHIM_VARIABLES}
        if preload:
            env["LD_PRELOAD"] = preload
        if preload == self.shim:
            env["FADVISE_SHIM_DUMP_DIR"] = str(dump_dir or self.work / "dumps")
            env["FADVISE_SHIM_STATS_DIR"] = stats_dir or self.stats_dir
            if policy:
                env["FADVISE_SHIM_POLICY"] = self.policies.get(policy, policy)
            if on_exit:
                env["FADVISE_SHIM_ON_EXIT"] = "1"
        return env

    def fresh_dump_dir(self):
        self.dump_serial += 1
        path = self.work / f"dumps-{self.dump_serial}"
        path.mkdir(mode=0o700)
        return path

    def run(self, argv, env, timeout=300):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, argv))} exited {done.returncode}: {done.stderr.strip()[-500:]}")
        return done

    def loop(self, mode, iterations, env, wrapper=(), program=None):
        """Runs call_loop (or `program`, another build of it; inside
        `wrapper`: a prefix, or a function of the command for tools that take
        it as one string) and returns ns/call."""
        argv = [str(program or self.bin / "call_loop"), mode, str(self.work / "page.dat"), str(iterations)]
        argv = wrapper(argv) if callable(wrapper) else [*wrapper, *argv]
        done = self.run(argv, env)
        first_number = re.search(r"^(\d+(?:\.\d+)?)$", done.stdout, re.M)
        return float(first_number.group(1)), done

    def loop_arm(self, mode, env, wrapper=(), after=None, program=None):
        """A measurement of ns/call that sizes itself on first use: at most
        `loop` calls, fewer when a call is slow (a tool, or a drop that did
        not happen), so every run stays near `run_seconds`."""
        sized = []

        def measure(env=env):
            if not sized:
                # A short pilot, then a longer one unless the call is slow,
                # so start-up effects do not shrink the fast arms.
                pilot = 200
                ns, _ = self.loop(mode, pilot, env, wrapper, program)
                if ns < 20_000:
                    ns, _ = self.loop(mode, 20_000, env, wrapper, program)
                fit = int(self.size["run_seconds"] * 1e9 / max(ns, 1.0))
                sized.append(max(pilot, min(self.size["loop"], fit)))
            ns, done = self.loop(mode, sized[0], env, wrapper, program)
            if after:
                after(done)
            return ns

        return measure

    def check_policies(self):
        """Says in the notes when the CLI rejects one of the bench policies."""
        for name, path in self.policies.items():
            done = subprocess.run([self.cli, "check", path], capture_output=True, text=True)
            if done.returncode != 0:
                self.notes.append(f"`fadvise-shim check` rejected the {name} policy "
                                  f"(exit {done.returncode}): {done.stderr.strip()[:200]}")

    # ---- alternation and rows --------------------------------------------

    def alternate(self, arms, rounds):
        """Runs each arm once per round, in order, and returns its samples."""
        samples = {name: [] for name, _ in arms}
        failed = {}
        for round_number in range(rounds):
            for name, measure in arms:
                if name in failed:
                    continue
                try:
                    samples[name].append(measure())
                except Exception as error:  # one broken arm must not sink the others
                    failed[name] = str(error)
                    log(f"arm {name!r} failed: {error}")
        for name, error in failed.items():
            self.notes.append(f"arm `{name}` failed and is left out: {error[:300]}")
            samples[name] = []
        return samples

    def row(self, case, arm, median, unit, ratio=None, target="—", verdict=""):
        self.rows.append(dict(case=case, arm=arm, median=format_value(median, unit), ratio=ratio,
                              target=target, verdict=verdict))

    def text_row(self, case, arm, text):
        self.rows.append(dict(case=case, arm=arm, median=text, ratio=None, target="—", verdict=""))

    def ratio_rows(self, case, samples, baseline, labels, unit, targets=None):
        """One row per arm: median, ratio to the baseline arm, verdict."""
        targets = targets or {}
        base = median(samples.get(baseline, []))
        for name, label in labels.items():
            value = median(samples.get(name, []))
            if value is None:
                self.row(case, label, None, unit, target=targets.get(name, ("—",))[0], verdict="not run")
                continue
            ratio = paired_ratio(samples.get(name, []), samples.get(baseline, []))
            if name == baseline:
                self.row(case, label, value, unit, ratio, "baseline")
                continue
            target, check = targets.get(name, ("—", None))
            verdict = "" if check is None or ratio is None else ("✓" if check(value, ratio) else "✗")
            self.row(case, label, value, unit, ratio, target, verdict)

    # ---- cases -------------------------------------------------------------

    def floor(self, name, case):
        """The path of a floor library bench.sh built, or None with a note."""
        library = self.floors / f"{name}.so"
        if library.is_file():
            return str(library)
        self.notes.append(f"Case {case}: {library.name} was not built, so its floor arm was skipped.")
        return None

    def case_loop(self):
        """Cases 1, 2 (posix_fadvise) and 6: one alternating group, with the
        floors of cases 1 and 2 (the least a C preload can do to time or to
        drop the call) in the same rounds."""
        shim = self.shim
        arms = [
            ("none", self.loop_arm("fadvise", self.env())),
            ("observe", self.loop_arm("fadvise", self.env(shim))),
            ("drop", self.loop_arm("fadvise", self.env(shim, "drop-fadvise"))),
            ("path", self.loop_arm("fadvise", self.env(shim, "path-rule"))),
            ("path-match", self.loop_arm("fadvise", self.env(shim, "path-match-rule"))),
            ("exe", self.loop_arm("fadvise", self.env(shim, "exe-rule"))),
            ("limit", self.loop_arm("fadvise", self.env(shim, "limit-rule"))),
            ("caller", self.loop_arm("fadvise", self.env(shim, "caller-rule"))),
            ("noop", self.loop_arm("noop", self.env())),
        ]
        if self.compare_shim:
            arms.insert(2, ("compared", self.loop_arm("fadvise", self.env(self.compare_shim))))
        floors = {"timing-floor": self.floor("timing-preload", 1), "drop-floor": self.floor("drop-preload", 2)}
        for name, library in floors.items():
            if library:
                arms.insert(1, (name, self.loop_arm("fadvise", self.env(library))))
        log(f"cases 1, 2, 6: {len(arms)} arms x {self.size['rounds']} rounds")
        s = self.alternate(arms, self.size["rounds"])
        self.loop_samples = s
        observed = ("≤ 1.08×", lambda v, r: r <= 1.08)
        self.ratio_rows("1 observed call", s, "none",
                        {"none": "posix_fadvise WILLNEED, cached page, no shim",
                         "observe": "shim, built-in default (observing)"},
                        "ns", {"observe": observed})
        self.floor_rows("1 observed call", s, "observe", "timing-floor",
                        "floor: C preload, 2 × `__rdtsc()` + real call + 1 relaxed atomic add into a log2 bucket",
                        "shim observing, ratio to the timing floor")
        if self.compare_shim and s.get("compared"):
            self.ratio_rows("1 observed call", s, "compared",
                            {"compared": f"the library of `--compare-shim` ({self.compare_shim}), observing",
                             "observe": "this shim observing, ratio to that library"},
                            "ns", {"observe": ("≤ +3 ns", lambda v, r: v - median(s["compared"]) <= 3)})
            added = [a - b for a, b in zip(s["observe"], s["compared"])]
            self.notes.append(f"Case 1: this shim's observed call costs {median(added):+.1f} ns against "
                              f"`--compare-shim`'s (median of same-round differences).")
        real = median(s["none"])
        if real and median(s["observe"]):
            self.notes.append(f"Case 1: the ratio of the two arms' medians is {median(s['observe']) / real:.3f}× "
                              "(the table's ratios are medians of same-round ratios).")
        self.ratio_rows("2 dropped call", s, "none",
                        {"drop": "shim, rule drops posix_fadvise"}, "ns",
                        {"drop": ("≤ 15 ns and ≤ 0.05×",
                                  lambda v, r: v <= 15 and r <= 0.05)})
        self.floor_rows("2 dropped call", s, "drop", "drop-floor",
                        "floor: C preload whose posix_fadvise returns 0 (no argument checks, no count)",
                        "shim dropping, ratio to the drop floor")
        self.ratio_rows("6 policy costs", s, "none",
                        {"path": 'shim, non-matching `path = ["/nonexistent/**"]` rule',
                         "exe": 'shim, non-matching `exe = ["nomatch"]` rule',
                         "limit": "shim, `limit` rule at 10⁹/s (all pass)",
                         "caller": 'shim, non-matching `caller = ["nomatch"]` rule (verdict cached per site)'},
                        "ns", {k: observed for k in ("path", "exe", "limit", "caller")})
        # Issue 17's target is against the observed call (the shim's own arm).
        path_target = ("≤ 1.3×", lambda v, r: r <= 1.3)
        rule_target = ("≤ 1.05×", lambda v, r: r <= 1.05)
        self.ratio_rows("6 policy costs", s, "observe",
                        {"path": "non-matching `path` rule, ratio to the observed call",
                         "path-match": "matching `path` rule that drops, ratio to the observed call",
                         "exe": "non-matching `exe` rule, ratio to the observed call",
                         "limit": "`limit` rule (all pass), ratio to the observed call",
                         "caller": "non-matching `caller` rule, ratio to the observed call"},
                        "ns", {"path": path_target, "path-match": path_target,
                               "exe": rule_target, "limit": rule_target, "caller": rule_target})
        if real is not None and median(s["drop"]) is not None:
            self.notes.append(f"Case 2: the dropped call costs {median(s['drop']):.1f} ns, "
                              f"{median(s['drop']) / real:.1%} of the real call ({real:.0f} ns); "
                              f"the loop's own cost (an opaque empty call) is {format_value(median(s['noop']), 'ns')}.")

    def floor_rows(self, case, samples, arm, floor, floor_label, label):
        """A floor arm against the real call, then `arm` against the floor
        (paired ratio) and what it adds above it in ns."""
        if not samples.get(floor):
            return
        self.ratio_rows(case, samples, "none", {floor: floor_label}, "ns")
        ratio = paired_ratio(samples.get(arm, []), samples[floor])
        value = median(samples.get(arm, []))
        self.row(case, label, value, "ns", ratio)
        if value is not None:
            self.notes.append(f"Case {case.split()[0]}: the shim's arm is {value - median(samples[floor]):+.1f} ns "
                              "from its floor (difference of medians).")

    def pair_loop_arm(self, env):
        """ns/call of two call_loop processes running at once (the mean of
        the two): the cost of a limit check under contention."""
        iterations = str(self.size["loop"] // 2)

        def measure():
            argv = [str(self.bin / "call_loop"), "fadvise", str(self.work / "page.dat"), iterations]
            pair = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                    for _ in range(2)]
            values = []
            for process in pair:
                out, err = process.communicate(timeout=300)
                if process.returncode != 0:
                    raise RuntimeError(f"call_loop exited {process.returncode}: {err.strip()[-300:]}")
                values.append(float(re.search(r"^(\d+(?:\.\d+)?)$", out, re.M).group(1)))
            return sum(values) / len(values)

        return measure

    def case_host_budget(self):
        """Case 7: a host-scope limit check against a process-scope one,
        two processes calling at once."""
        arms = [
            ("process", self.pair_loop_arm(self.env(self.shim, "process-budget"))),
            ("host", self.pair_loop_arm(self.env(self.shim, "host-budget"))),
        ]
        log(f"case 7: {len(arms)} arms x {self.size['rounds']} rounds")
        s = self.alternate(arms, self.size["rounds"])
        self.ratio_rows("7 host budget", s, "process",
                        {"process": "2 processes at once, `limit` rule, scope = \"process\" (all pass)",
                         "host": "2 processes at once, same rule, scope = \"host\": one shared word"},
                        "ns", {"host": ("≤ 2×", lambda v, r: r <= 2.0)})

    def case_fdatasync(self):
        arms = [
            ("eatmydata", self.loop_arm("fdatasync", self.env(EATMYDATA))),
            ("shim", self.loop_arm("fdatasync", self.env(self.shim, "drop-fdatasync"))),
            ("real", self.loop_arm("fdatasync", self.env())),
        ]
        log(f"case 2 fdatasync: {self.size['rounds']} rounds")
        s = self.alternate(arms, self.size["rounds"])
        self.ratio_rows("2 dropped call", s, "eatmydata",
                        {"eatmydata": "fdatasync under libeatmydata",
                         "shim": "fdatasync, shim rule drops it",
                         "real": "fdatasync, real (clean file)"},
                        "ns", {"shim": ("≤ 0.25×", lambda v, r: r <= 0.25)})

    def scenario_run(self, mode, env):
        """One run of the seed's scenario with the latency probe alongside."""
        logs = self.work / "logs"
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir()
        os.sync()  # start every arm with no dirty pages left by the previous one
        probe = subprocess.Popen([self.bin / "latency_probe", self.work / "probe.dat", "500"],
                                 stdout=subprocess.PIPE, text=True, env=self.env())
        try:
            if probe.stdout.readline().strip() != "ready":
                raise RuntimeError("latency probe did not start")
            done = self.run([self.bin / "glog_writers", mode, logs, str(self.size["writers"]),
                             str(self.size["lines"])], env)
        finally:
            probe.send_signal(signal.SIGTERM)
            out, _ = probe.communicate(timeout=30)
        p50, p99, p999, reads = out.split()
        shutil.rmtree(logs, ignore_errors=True)
        return dict(wall=float(done.stdout.split()[0]), p50=float(p50), p99=float(p99),
                    p999=float(p999), reads=int(reads))

    def case_scenario(self):
        arms = [
            ("none", lambda: self.scenario_run("none", self.env())),
            ("fadvise", lambda: self.scenario_run("fadvise", self.env())),
            ("shim", lambda: self.scenario_run("fadvise", self.env(self.shim, "drop-dontneed"))),
        ]
        w, lines = self.size["writers"], self.size["lines"]
        log(f"case 3: {w} writers x {lines:,} lines, {self.size['scenario_rounds']} rounds")
        s = self.alternate(arms, self.size["scenario_rounds"])
        labels = {"none": f"{w} writers × {lines:,} lines, no fadvise",
                  "fadvise": "with DONTNEED after every line",
                  "shim": "with DONTNEED, shim drops it"}
        walls = {k: [r["wall"] for r in v] for k, v in s.items()}
        self.ratio_rows("3 seed scenario", walls, "none", labels, "s",
                        {"shim": ("≤ 1.10×", lambda v, r: r <= 1.10)})
        base_p99 = median([r["p99"] for r in s["none"]])
        for name, label in [("none", "no fadvise"), ("fadvise", "with fadvise"), ("shim", "shim drops")]:
            if not s[name]:
                continue
            quantiles = [median([r[q] for r in s[name]]) for q in ("p50", "p99", "p999")]
            text = " / ".join(f"{q:,.0f}" for q in quantiles) + " µs"
            ratio = quantiles[1] / base_p99 if base_p99 else None
            self.rows.append(dict(case="3 seed scenario",
                                  arm=f"reader p50 / p99 / p99.9 (500 × 64 KiB/s), {label}; ratio of p99",
                                  median=text, ratio=ratio, target="—", verdict=""))
        self.case_real_glog()

    def case_real_glog(self):
        lines = self.size["glog_lines"]
        dumps = self.fresh_dump_dir()
        logs = self.work / "glog"

        def glog(env):
            shutil.rmtree(logs, ignore_errors=True)
            logs.mkdir()
            return float(self.run([self.bin / "glog_real", logs, str(lines)], env).stdout.split()[0])

        arms = [("none", lambda: glog(self.env())),
                ("shim", lambda: glog(self.env(self.shim, on_exit=True, dump_dir=dumps)))]
        log(f"case 3 real glog: {lines:,} WARNING lines, {self.size['scenario_rounds']} rounds")
        s = self.alternate(arms, self.size["scenario_rounds"])
        self.ratio_rows("3 seed scenario", s, "none",
                        {"none": f"Debian glog, {lines:,} WARNING lines, no shim",
                         "shim": "Debian glog under the shim (observing)"}, "s")
        calls = self.read_report(dumps)
        fadvise = calls.get("posix_fadvise") if calls else None
        if fadvise:
            per_run = fadvise["count"] / max(1, calls["_processes"])
            lat = fadvise.get("latency_ns", {})
            text = (f"{per_run:,.0f} calls/run; p50 {fmt_ns(lat.get('p50'))}, "
                    f"p99 {fmt_ns(lat.get('p99'))}, max {fmt_ns(lat.get('max'))}")
        else:
            text = "no posix_fadvise in the dumps" if calls is not None else "no dump read"
        self.text_row("3 seed scenario", "Debian glog: posix_fadvise calls and cost (shim's dump)", text)

    def read_report(self, dump_dir):
        """Calls of `fadvise-shim report --format json`, or parsed dump tables."""
        done = subprocess.run([self.cli, "report", "--format", "json", str(dump_dir)],
                              capture_output=True, text=True)
        if done.returncode == 0:
            try:
                report = json.loads(done.stdout)
                calls = dict(report["calls"])
                calls["_processes"] = report.get("processes", 1)
                return calls
            except (ValueError, KeyError, TypeError):
                pass
        return parse_dump_tables(dump_dir, self.notes)

    def case_tools(self):
        reported = {}

        def keep(tool, value):
            reported.setdefault(tool, []).append(value)

        strace_out, perf_out = self.work / "strace.out", self.work / "perf-trace.out"
        bpf_script = ("tracepoint:syscalls:sys_enter_fadvise64 /pid == cpid/ { @start[tid] = nsecs; } "
                      "tracepoint:syscalls:sys_exit_fadvise64 /@start[tid]/ "
                      "{ @mean_ns = avg(nsecs - @start[tid]); delete(@start[tid]); } END { clear(@start); }")

        def bpf_mean(done):
            mean = re.search(r"@mean_ns:\s*(\d+)", done.stdout)
            keep("bpftrace", float(mean.group(1)) if mean else None)

        shim_dumps = []

        def shim_env():
            # A fresh dump directory per run, so each run's report is its own.
            shim_dumps.append(self.fresh_dump_dir())
            return self.env(self.shim, on_exit=True, dump_dir=shim_dumps[-1])

        def shim_p50(done):
            calls = self.read_report(shim_dumps[-1]) or {}
            keep("shim", calls.get("posix_fadvise", {}).get("latency_ns", {}).get("p50"))

        shim_loop = self.loop_arm("fadvise", None, after=shim_p50)
        arms = [("none", self.loop_arm("fadvise", self.env())),
                ("shim", lambda: shim_loop(env=shim_env()))]
        tools = [
            ("strace", self.loop_arm("fadvise", self.env(), ["strace", "-c", "-f", "-o", str(strace_out)],
                                     after=lambda d: keep("strace", strace_mean_ns(strace_out.read_text())))),
            ("perf", self.loop_arm("fadvise", self.env(), ["perf", "trace", "-s", "-o", str(perf_out), "--"],
                                   after=lambda d: keep("perf", perf_trace_mean_ns(perf_out.read_text())))),
            ("bpftrace", self.loop_arm("fadvise", self.env(),
                                       lambda argv: ["bpftrace", "-c", " ".join(argv), "-e", bpf_script],
                                       after=bpf_mean)),
        ]
        unavailable = {}
        for tool, measure in tools:
            why = tool_unavailable(tool)
            if why:
                unavailable[tool] = why
            else:
                arms.append((tool, measure))
        log(f"case 4: {len(arms)} arms x {self.size['rounds']} rounds")
        s = self.alternate(arms, self.size["rounds"])
        labels = {"none": "posix_fadvise loop, no tool",
                  "shim": "shim observing (on_exit dump)",
                  "strace": "`strace -c -f`",
                  "perf": "`perf trace -s`",
                  "bpftrace": "`bpftrace`, enter/exit tracepoints, avg()"}
        self.ratio_rows("4 vs tools", s, "none", {k: v for k, v in labels.items() if k in s}, "ns",
                        {"shim": ("≤ 1.08×", lambda v, r: r <= 1.08)})
        for tool, why in unavailable.items():
            self.text_row("4 vs tools", labels[tool], f"not run: {why}")
        # The in-kernel truth: the loop's ns/call without any tool, minus the
        # loop's own cost (an opaque empty call), from cases 1's samples.
        real, noop = median(self.loop_samples.get("none", [])), median(self.loop_samples.get("noop", []))
        truth = real - noop if real is not None and noop is not None else None
        self.row("4 vs tools", "in-kernel truth ≈ no-shim loop − empty loop (case 1)", truth, "ns", 1.0 if truth else None,
                 "baseline")
        names = {"shim": "latency the shim reports (p50)", "strace": "latency `strace -c` reports (mean)",
                 "perf": "latency `perf trace -s` reports (mean)", "bpftrace": "latency `bpftrace` reports (mean)"}
        for tool, label in names.items():
            values = [v for v in reported.get(tool, []) if v is not None]
            if tool in s and values:
                value = median(values)
                self.row("4 vs tools", label, value, "ns", value / truth if truth else None)

    def spawn_arm(self, name, env, faults, spawner=None, program=None):
        """One arm of spawns: µs per spawn, and the children's page faults
        per spawn kept in `faults`. `spawner` and `program` default to the
        glibc spawn_true and /bin/true."""
        argv = [str(spawner or self.bin / "spawn_true"), str(self.size["spawns"])]
        if program:
            argv.append(str(program))

        def measure():
            us, per_spawn = self.run(argv, env).stdout.split()
            faults.setdefault(name, []).append(float(per_spawn))
            return float(us)
        return (name, measure)

    def case_startup(self):
        count = self.size["spawns"]
        faults = {}

        def spawn_arm(name, env):
            return self.spawn_arm(name, env, faults)

        arms = [spawn_arm("none", self.env()), spawn_arm("default", self.env(self.shim))]
        labels = {"none": f"posix_spawn /bin/true × {count:,}, no shim (µs per spawn)",
                  "default": "shim, built-in default"}
        if self.compare_shim:
            arms.append(spawn_arm("compared", self.env(self.compare_shim)))
            labels["compared"] = "the library of `--compare-shim`, built-in default"
        if self.example_policy.is_file():
            example = str(self.example_policy.resolve())
            arms.append(spawn_arm("example", self.env(self.shim, example)))
            labels["example"] = "shim, policy.example.toml"
        else:
            self.notes.append("Case 5: policy.example.toml is missing, so its arm was skipped.")
        # What any preloaded library costs, for scale (built by bench.sh).
        floors = {"empty-c": "floor: an empty C library preloaded",
                  "empty-rust": "floor: an empty Rust cdylib preloaded (std, static unwinder)"}
        for name, label in floors.items():
            library = self.floors / f"{name}.so"
            if library.is_file():
                arms.append(spawn_arm(name, self.env(str(library))))
                labels[name] = label
            else:
                self.notes.append(f"Case 5: {library.name} was not built, so its floor arm was skipped.")
        log(f"case 5: {len(arms)} arms x {self.size['rounds']} rounds of {count:,} spawns")
        s = self.alternate(arms, self.size["rounds"])
        # Issue 17: within 0.05× of what an empty C library costs, measured
        # in the same alternation.
        floor_ratio = paired_ratio(s.get("empty-c", []), s.get("none", []))
        if floor_ratio is None:
            startup = ("≤ 1.10×", lambda v, r: r <= 1.10)
        else:
            bound = floor_ratio + 0.05
            startup = (f"≤ {bound:.3f}× (empty C floor + 0.05)", lambda v, r: r <= bound)
        self.ratio_rows("5 start-up", s, "none", labels, "µs", {"default": startup, "example": startup})
        fault_labels = {name: f"{label} (page faults per spawn)" for name, label in labels.items()}
        fault_labels["none"] = "/bin/true, no shim (page faults per spawn)"
        self.ratio_rows("5 start-up", faults, "none", fault_labels, "faults")

        self.memory_rows()
        self.first_call_rows()

    def case_musl(self):
        """Case 8 (issue 22): cases 1, 2 and 5 for a musl program. The call
        loop, the spawner and the spawned program are built with musl-gcc
        (bench.sh), and so are the floors, measured in the same rounds as
        the shim's arms."""
        musl = self.bin / "musl"
        if not (musl / "call_loop").is_file():
            self.notes.append("Case 8: the musl programs were not built (no musl-gcc), so the case was skipped.")
            return
        loop = musl / "call_loop"
        arms = [("none", self.loop_arm("fadvise", self.env(), program=loop)),
                ("observe", self.loop_arm("fadvise", self.env(self.shim), program=loop)),
                ("drop", self.loop_arm("fadvise", self.env(self.shim, "drop-fadvise"), program=loop))]
        for name, library in (("timing-floor", "musl-timing-preload"), ("drop-floor", "musl-drop-preload")):
            library = self.floor(library, 8)
            if library:
                arms.append((name, self.loop_arm("fadvise", self.env(library), program=loop)))
        log(f"case 8 calls: {len(arms)} arms x {self.size['rounds']} rounds")
        s = self.alternate(arms, self.size["rounds"])
        case = "8 musl"
        self.ratio_rows(case, s, "none",
                        {"none": "musl: posix_fadvise WILLNEED, cached page, no shim",
                         "observe": "musl: shim, built-in default (observing)",
                         "drop": "musl: shim, rule drops posix_fadvise"}, "ns",
                        {"observe": ("≤ 1.08×", lambda v, r: r <= 1.08),
                         "drop": ("≤ 15 ns and ≤ 0.05×", lambda v, r: v <= 15 and r <= 0.05)})
        self.floor_rows(case, s, "observe", "timing-floor",
                        "musl floor: C preload (musl-gcc), 2 × `__rdtsc()` + real call + 1 atomic add",
                        "musl: shim observing, ratio to the timing floor")
        self.floor_rows(case, s, "drop", "drop-floor",
                        "musl floor: C preload (musl-gcc) whose posix_fadvise returns 0",
                        "musl: shim dropping, ratio to the drop floor")

        faults = {}
        spawner, program = musl / "spawn_true", musl / "true"
        arms = [self.spawn_arm("none", self.env(), faults, spawner, program),
                self.spawn_arm("default", self.env(self.shim), faults, spawner, program)]
        labels = {"none": f"musl: posix_spawn of a musl `true` × {self.size['spawns']:,}, no shim (µs per spawn)",
                  "default": "musl: shim, built-in default"}
        empty = self.floor("musl-empty-c", 8)
        if empty:
            arms.append(self.spawn_arm("empty-c", self.env(empty), faults, spawner, program))
            labels["empty-c"] = "musl floor: an empty C library (musl-gcc) preloaded"
        log(f"case 8 start-up: {len(arms)} arms x {self.size['rounds']} rounds")
        s = self.alternate(arms, self.size["rounds"])
        floor_ratio = paired_ratio(s.get("empty-c", []), s.get("none", []))
        startup = (("≤ 1.10×", lambda v, r: r <= 1.10) if floor_ratio is None else
                   (f"≤ {floor_ratio + 0.05:.3f}× (empty C floor + 0.05)", lambda v, r: r <= floor_ratio + 0.05))
        self.ratio_rows(case, s, "none", labels, "µs", {"default": startup})
        self.ratio_rows(case, faults, "none",
                        {name: f"{label} (page faults per spawn)" for name, label in labels.items()}, "faults")

    def case_fork(self):
        """Case 9 (issue 24): a short process. fork_fsync forks children one
        after another, each making one fsync and exiting; the shim arm keeps
        its statistics private (`FADVISE_SHIM_STATS_DIR=none`), so what it
        measures is the library's own cost per short process, not the stats
        directory's."""
        count = self.size["forks"]
        # The fsync's file lies on tmpfs where there is one, beside the
        # run's stats directory: on ext4 here one fsync is a device flush
        # of 1-5 ms that would bury what a process costs.
        fsync_file = Path(self.stats_dir).parent / f"{Path(self.stats_dir).name}.fsync"
        fsync_file.write_bytes(os.urandom(65536))
        argv = [self.bin / "fork_fsync", fsync_file, str(count)]

        cpu = {}

        def arm(name, env):
            def measure():
                wall, cpu_time = map(float, self.run(argv, env).stdout.split())
                cpu.setdefault(name, []).append(cpu_time)
                return wall
            return (name, measure)

        arms = [arm("none", self.env()), arm("private", self.env(self.shim, stats_dir="none"))]
        if self.compare_shim:
            compared = self.env(self.compare_shim)
            compared["FADVISE_SHIM_STATS_DIR"] = "none"
            arms.append(arm("compared", compared))
        empty = self.floor("empty-c", 9)
        if empty:
            arms.append(arm("empty-c", self.env(empty)))
        log(f"case 9: {len(arms)} arms x {self.size['rounds']} rounds of {count:,} children")
        s = self.alternate(arms, self.size["rounds"])
        labels = {"none": f"fork + fsync + exit × {count:,}, no shim",
                  "private": "shim, `FADVISE_SHIM_STATS_DIR=none`",
                  "compared": "the library of `--compare-shim`, `FADVISE_SHIM_STATS_DIR=none`",
                  "empty-c": "floor: an empty C library preloaded"}
        # Wall time is what the target names; CPU time (the forker's
        # and its children's) is what a loaded machine disturbs less.
        for samples, unit in ((s, "wall µs per child"), (cpu, "CPU µs per child")):
            self.ratio_rows("9 short process", samples, "none",
                            {name: f"{label} ({unit})" for name, label in labels.items()}, "µs")
            for name, label in (("private", "shim, statistics off"), ("compared", "`--compare-shim`, statistics off"),
                                ("empty-c", "empty C floor")):
                if samples.get(name) and len(samples[name]) == len(samples["none"]):
                    added = median([a - b for a, b in zip(samples[name], samples["none"])])
                    target = ("≤ 50 µs", "✓" if added <= 50 else "✗") if name == "private" else ("—", "")
                    self.row("9 short process", f"{label} − no shim, median of same-round differences ({unit})",
                             added, "µs", target=target[0], verdict=target[1])
        fsync_file.unlink()

    def memory_rows(self):
        """What a process holds after one call, with and without the shim:
        VmRSS, RssAnon, RssFile (mapped files: the libraries' pages),
        RssShmem (the stats file's pages the process has mapped) and the
        stats file's own allocated and apparent size."""
        rss = [self.bin / "rss_one_call", self.work / "page.dat"]
        fields = ("rss", "anon", "file", "shmem", "file_allocated", "file_size")

        def measure(env):
            return dict(zip(fields, map(float, self.run(rss, env).stdout.split())))

        arms = [("none", lambda: measure(self.env())), ("shim", lambda: measure(self.env(self.shim)))]
        if self.example_policy.is_file():
            example = str(self.example_policy.resolve())
            arms.append(("example", lambda: measure(self.env(self.shim, example))))
        s = self.alternate(arms, self.size["rounds"])
        if not s["none"] or not s["shim"]:
            return
        none = {f: median([r[f] for r in s["none"]]) for f in fields}
        shim = {f: median([r[f] for r in s["shim"]]) for f in fields}
        # Issue 17: what the shim adds to a process of its own (its heap,
        # data and stack pages, and the stats file's pages mapped) ≤ 128 KiB.
        added = ("≤ 128 KiB", lambda v, r: v <= 128)
        for arm, label in (("shim", "built-in default"), ("example", "policy.example.toml")):
            if s.get(arm):
                anon = median([r["anon"] + r["shmem"] for r in s[arm]]) - none["anon"] - none["shmem"]
                vm = median([r["rss"] for r in s[arm]]) - none["rss"]
                self.row("5 start-up", f"RssAnon + RssShmem the shim adds after one call, {label}", anon, "KiB",
                         target=added[0], verdict="✓" if added[1](anon, None) else "✗")
                self.row("5 start-up", f"VmRSS the shim adds after one call, {label}", vm, "KiB")
        self.row("5 start-up", "VmRSS after one call, no shim", none["rss"], "KiB", 1.0, "baseline")
        self.row("5 start-up", "VmRSS after one call, shim", shim["rss"], "KiB", shim["rss"] / none["rss"])
        self.row("5 start-up", "resident memory the shim adds (VmRSS)", shim["rss"] - none["rss"], "KiB")
        for field, name in (("anon", "RssAnon"), ("file", "RssFile")):
            self.text_row("5 start-up", f"{name} after one call, no shim → shim",
                          f"{none[field]:,.0f} → {shim[field]:,.0f} KiB (+{shim[field] - none[field]:,.0f})")
        self.row("5 start-up", "RssShmem after one call, shim (stats file pages mapped)", shim["shmem"], "KiB")
        self.text_row("5 start-up", "the process's stats file: allocated (`st_blocks`) / size",
                      f"{shim['file_allocated']:,.0f} / {shim['file_size']:,.0f} KiB")

    def first_call_rows(self):
        """A process's first posix_fadvise against its second: under the
        shim the first sets the library up and creates the stats file; with
        `FADVISE_SHIM_STATS_DIR=none` it only sets the library up."""
        argv = [self.bin / "first_call", self.work / "page.dat"]
        samples = {"none-first": [], "none-second": [], "shim-first": [], "shim-second": [],
                   "private-first": [], "private-second": []}

        def measure(name, env):
            def run():
                first, second = map(float, self.run(argv, env).stdout.split())
                samples[f"{name}-second"].append(second)
                return first
            return (name, run)

        runs = 3 * self.size["rounds"]
        s = self.alternate([measure("none", self.env()), measure("shim", self.env(self.shim)),
                            measure("private", self.env(self.shim, stats_dir="none"))], runs)
        for name in ("none", "shim", "private"):
            samples[f"{name}-first"] = s[name]
        self.ratio_rows("5 start-up", samples, "none-first",
                        {"none-first": f"first posix_fadvise of a process, no shim (median of {runs} processes)",
                         "none-second": "second call, no shim",
                         "shim-first": "first call, shim: sets up, creates the stats file",
                         "shim-second": "second call, shim",
                         "private-first": "first call, shim, `FADVISE_SHIM_STATS_DIR=none` (no stats file)",
                         "private-second": "second call, shim, `FADVISE_SHIM_STATS_DIR=none`"}, "ns")

    def machine_line(self):
        """The line above the table: the CPU and what one clock read costs
        on it (the shim's observed path makes two TSC reads per call)."""
        reads = 1_000_000
        runs = [self.run([self.bin / "clock_cost", str(reads)], self.env()).stdout.split()
                for _ in range(self.size["rounds"])]
        tsc, monotonic = (median([float(run[i]) for run in runs]) for i in (0, 1))
        models = re.findall(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        source = Path("/sys/devices/system/clocksource/clocksource0/current_clocksource")
        source = source.read_text().strip() if source.exists() else "unknown"
        self.header = (f"Machine: `{models[0] if models else 'unknown CPU'}` (`/proc/cpuinfo` model name), "
                       f"{os.cpu_count()} CPUs, clock source `{source}`; one `rdtsc` read costs "
                       f"{format_value(tsc, 'ns')}, one `clock_gettime(CLOCK_MONOTONIC)` {format_value(monotonic, 'ns')} "
                       f"(medians of {len(runs)} runs of {reads:,} reads each, `scripts/bench/clock_cost.c`).")

    # ---- output --------------------------------------------------------------

    def table(self):
        lines = [self.header, ""] if self.header else []
        lines += ["| case | arm | median | ratio to baseline | target | verdict |",
                  "| --- | --- | ---: | ---: | --- | :---: |"]
        for r in self.rows:
            ratio = "—" if r["ratio"] is None else f"{r['ratio']:.3f}×"
            lines.append(f"| {r['case']} | {r['arm']} | {r['median']} | {ratio} | {r['target']} | {r['verdict']} |")
        if self.notes:
            lines.append("")
            lines.extend(f"- {note}" for note in self.notes)
        return "\n".join(lines) + "\n"


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def paired_ratio(values, baseline):
    """The median over rounds of value / baseline of the same round: the
    arms of a round run one after the other, so drift on the machine (other
    work, frequency, the host) cancels within each pair. Falls back to the
    ratio of medians when the rounds do not pair up (an arm failed)."""
    pairs = [(v, b) for v, b in zip(values, baseline) if v is not None and b]
    if pairs and len(values) == len(baseline):
        return statistics.median(v / b for v, b in pairs)
    base = median(baseline)
    value = median(values)
    return None if base is None or value is None else value / base


def format_value(value, unit):
    if value is None:
        return "—"
    if unit == "s":
        return f"{value:.3f} s"
    if unit in ("ns", "µs", "faults") and abs(value) < 100:
        return f"{value:.1f} {unit}"
    return f"{value:,.0f} {unit}"


def fmt_ns(ns):
    if ns is None:
        return "?"
    if isinstance(ns, str):
        return ns
    return f"{ns / 1000:,.1f} µs" if ns >= 10_000 else f"{ns:,.0f} ns"


def strace_mean_ns(text):
    """Mean of fadvise64 from `strace -c`: seconds / calls (usecs/call is rounded)."""
    for line in text.splitlines():
        words = line.split()
        if words and words[-1] == "fadvise64":
            return float(words[1]) * 1e9 / float(words[3])
    return None


def perf_trace_mean_ns(text):
    """Mean of fadvise64 from `perf trace -s`: total msec / calls."""
    for line in text.splitlines():
        words = line.split()
        if words and words[0] == "fadvise64":
            return float(words[3]) * 1e6 / float(words[1])
    return None


def parse_dump_tables(dump_dir, notes):
    """Fallback when `fadvise-shim report` is not ready: each dump's table text."""
    calls, processes = {}, 0
    for dump in Path(dump_dir).glob("*.dump"):
        processes += 1
        header = None
        for line in dump.read_text(errors="replace").splitlines():
            words = line.split()
            if words[:2] == ["call", "count"]:
                header = words
            elif header and len(words) == len(header) and words[1].isdigit():
                row = dict(zip(header, words))
                entry = calls.setdefault(row["call"], dict(count=0, latency_ns={}))
                entry["count"] += int(row["count"])
                entry["latency_ns"] = dict(p50=row["p50"], p99=row["p99"], max=row["max"])
            elif header and not words:
                break
    if processes == 0:
        return None
    notes.append("`fadvise-shim report --format json` failed; figures come from the dump tables "
                 "(latencies of the last dump read).")
    calls["_processes"] = processes
    return calls


def tool_unavailable(tool):
    if shutil.which(tool) is None:
        return f"`{tool}` is not installed"
    if tool in ("perf", "bpftrace") and not Path("/sys/kernel/tracing/events/syscalls").is_dir():
        return "tracefs is not mounted at /sys/kernel/tracing (and could not be)"
    return None


def positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bin", required=True, help="directory of the compiled workloads")
    parser.add_argument("--work", required=True, help="scratch directory on a real file system")
    parser.add_argument("--shim", required=True)
    parser.add_argument("--cli", required=True)
    parser.add_argument("--example-policy", required=True)
    parser.add_argument("--floors", required=True,
                        help="directory of the floor libraries (cases 1, 2, 5, 8 and 9) bench.sh built")
    parser.add_argument("--stats-dir", required=True, help="FADVISE_SHIM_STATS_DIR for the shim arms")
    parser.add_argument("--compare-shim", help="another build of the library to measure beside this one in cases 1, 5 and 9")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=positive, help="rounds of every alternation (default 7, --quick 5)")
    parser.add_argument("--output")
    parser.add_argument("--cases", help="comma-separated subset to run: " + ", ".join(CASES))
    args = parser.parse_args()
    chosen = args.cases.split(",") if args.cases else list(CASES)
    unknown = [name for name in chosen if name not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")

    work = Path(args.work)
    (work / "dumps").mkdir(mode=0o700, exist_ok=True)
    (work / "page.dat").write_bytes(os.urandom(65536))
    (work / "probe.dat").write_bytes(os.urandom(16 << 20))

    started = time.monotonic()
    load_before = os.getloadavg()[0]
    bench = Bench(args)
    bench.machine_line()
    for name in chosen:
        getattr(bench, CASES[name])()
        log(f"{time.monotonic() - started:.0f} s so far")
    bench.notes.append("Each ratio is the median over rounds of the arm's value divided by the baseline's in the "
                       "same round (arms of a round run back to back); the median column is each arm's own median.")
    bench.notes.append(f"Loops make up to {bench.size['loop']:,} calls per run, fewer when a call is slow "
                       f"(sized by a first pilot run to about {bench.size['run_seconds']} s).")
    bench.notes.append(f"Load average (1 min) {load_before:.2f} at the start, {os.getloadavg()[0]:.2f} at the end "
                       "(other work on the machine widens the spread; alternation keeps ratios fair).")
    reduced = [" (--quick: smaller counts, not for the record)" if args.quick else "",
               f" (--rounds {args.rounds}: {args.rounds} rounds per alternation)" if args.rounds else ""]
    bench.notes.append(f"Run took {time.monotonic() - started:.0f} s{''.join(reduced)}.")
    table = bench.table()
    print(table, end="")
    if args.output:
        Path(args.output).write_text(table)


if __name__ == "__main__":
    main()
