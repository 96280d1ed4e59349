#!/usr/bin/env python3
"""Short processes at scale (issue 24): what a fork + one fsync + exit costs
under the shim with statistics off, with live statistics in a fresh
directory, and in one that 100,000 processes have already passed through;
the directory's size throughout; `report` of 1,000 live and 100,000 exited
processes. Arms alternate (none, off, fresh, aged, ...), medians of the
rounds. Usage:

    python3 scripts/bench/retire_scale.py [CHILDREN_PER_ROUND] [ROUNDS] [HISTORY]

Needs the release build (`cargo build --release --workspace`).
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIBRARY = os.path.join(ROOT, "target/release/libfadvise_shim.so")
CLI = os.path.join(ROOT, "target/release/fadvise-shim")


def compile_c(work, name):
    binary = os.path.join(work, name)
    source = os.path.join(ROOT, "tests/c_live", name + ".c")
    subprocess.run(["cc", "-O2", "-o", binary, source], check=True)
    return binary


def env_for(stats_dir):
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not k.startswith("FADVISE_SHIM_")}
    if stats_dir is not None:
        env["LD_PRELOAD"] = LIBRARY
        env["FADVISE_SHIM_STATS_DIR"] = stats_dir
        env["FADVISE_SHIM_DUMP_DIR"] = "/tmp"
    return env


def per_child_ms(forker, data, children, stats_dir, watch=None):
    start = time.perf_counter()
    subprocess.run([forker, data, str(children), "plain"], env=env_for(stats_dir),
                   check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000 / children


def watch_dir(path, stop, most):
    while not stop.is_set():
        try:
            most[0] = max(most[0], len(os.listdir(path)))
        except FileNotFoundError:
            pass
        time.sleep(0.005)


def main():
    children = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    history = int(sys.argv[3]) if len(sys.argv) > 3 else 100_000
    work = tempfile.mkdtemp(prefix="retire-bench-", dir="/dev/shm")
    try:
        forker = compile_c(work, "forker")
        calls = compile_c(work, "calls")
        data = os.path.join(work, "data")
        fresh_parent = os.path.join(work, "fresh")
        aged = os.path.join(work, "aged")
        os.mkdir(fresh_parent)
        # The history: two forkers at once, the directory watched.
        stop, most = threading.Event(), [0]
        watcher = threading.Thread(target=watch_dir, args=(aged, stop, most))
        watcher.start()
        start = time.perf_counter()
        procs = [subprocess.Popen([forker, data, str(history // 2), "plain"],
                                  env=env_for(aged), stdout=subprocess.DEVNULL)
                 for _ in range(2)]
        for proc in procs:
            proc.wait()
        history_s = time.perf_counter() - start
        stop.set()
        watcher.join()
        print(f"history: {history} processes by two forkers in {history_s:.1f} s, "
              f"directory at most {most[0]} entries (no reader)")
        samples = {"none": [], "off": [], "fresh": [], "aged": []}
        for round_ in range(rounds):
            fresh = os.path.join(fresh_parent, str(round_))
            samples["none"].append(per_child_ms(forker, data, children, None))
            samples["off"].append(per_child_ms(forker, data, children, "none"))
            samples["fresh"].append(per_child_ms(forker, data, children, fresh))
            samples["aged"].append(per_child_ms(forker, data, children, aged))
        med = {arm: statistics.median(values) for arm, values in samples.items()}
        print(f"per child (fork + fsync + exit), median of {rounds} rounds of {children}:")
        for arm in samples:
            print(f"  {arm:6} {med[arm]:.3f} ms")
        print(f"  off - none   {med['off'] - med['none']:+.3f} ms")
        print(f"  fresh - off  {med['fresh'] - med['off']:+.3f} ms")
        print(f"  aged / fresh (live-statistics cost) "
              f"{(med['aged'] - med['off']) / max(med['fresh'] - med['off'], 1e-9):.2f}x")
        # Readers: 1,000 live neighbours beside the history.
        live = [subprocess.Popen([calls, data, "1", "wait"], env=env_for(aged),
                                 stdout=subprocess.PIPE) for _ in range(1000)]
        for proc in live:
            proc.stdout.readline()
        times = []
        for _ in range(3):
            start = time.perf_counter()
            out = subprocess.run([CLI, "report", aged], check=True,
                                 capture_output=True, text=True).stdout
            times.append(time.perf_counter() - start)
        print(f"report of 1,000 live + {history + rounds * children:,} exited: "
              + ", ".join(f"{t * 1000:.0f} ms" for t in times)
              + f" ({out.splitlines()[0]})")
        for proc in live:
            proc.kill()
        for proc in live:
            proc.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
