#!/usr/bin/env python3
"""Scale of the live statistics (issue 13): the time `report` takes to read
1,000 live processes' stats files, and to retire 10,000 dead ones into
their aggregates; the shared memory one stats file really holds.

    python3 scripts/bench/stats_scale.py [LIVE] [DEAD]

Live processes are real (a C program under the shim that makes one call and
sleeps); dead ones are copies of a real dead file with fresh nonces (what
10,000 short processes would leave if none had retired its neighbours)."""
import json, os, shutil, signal, statistics, struct, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(ROOT, "target/release/fadvise-shim")
LIB = os.path.join(ROOT, "target/release/libfadvise_shim.so")
LIVE = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
DEAD = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
NONCE_OFFSET = 7 * 8

SLEEPER = r"""
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int fd = open(argv[1], O_RDWR | O_CREAT, 0644);
    posix_fadvise(fd, 0, 4096, POSIX_FADV_WILLNEED);
    puts("ready"); fflush(stdout);
    pause();
    return 0;
}
"""

def report(stats):
    start = time.monotonic()
    out = subprocess.run([CLI, "report", "--format", "json", stats], capture_output=True, check=True)
    return time.monotonic() - start, json.loads(out.stdout)

def main():
    work = tempfile.mkdtemp(prefix="stats-scale-", dir="/var/tmp")
    stats = os.path.join(work, "stats")
    source = os.path.join(work, "sleeper.c")
    open(source, "w").write(SLEEPER)
    sleeper = os.path.join(work, "sleeper")
    subprocess.run(["cc", "-O2", "-o", sleeper, source], check=True)
    env = dict(os.environ, LD_PRELOAD=LIB, FADVISE_SHIM_STATS_DIR=stats)
    data = os.path.join(work, "data")
    children = []
    for _ in range(LIVE):
        child = subprocess.Popen([sleeper, data], env=env, stdout=subprocess.PIPE)
        child.stdout.readline()
        children.append(child)
    one = next(name for name in os.listdir(stats) if name.endswith(".stats"))
    blocks = os.stat(os.path.join(stats, one)).st_blocks * 512
    reads = [report(stats)[0] for _ in range(5)]
    _, merged = report(stats)
    assert merged["processes"] == LIVE, merged["processes"]
    for child in children:
        child.send_signal(signal.SIGKILL)
        child.wait()
    dead_dir = os.path.join(work, "dead")
    os.mkdir(dead_dir)
    template = open(os.path.join(stats, one), "rb").read()
    for index in range(DEAD):
        body = bytearray(template)
        body[NONCE_OFFSET:NONCE_OFFSET + 8] = struct.pack("<Q", 0x1000 + index)
        with open(os.path.join(dead_dir, f"dead.{index}.1-1.{index:016x}.stats"), "wb") as out:
            out.write(body)
    compact, merged = report(dead_dir)
    assert merged["processes"] == DEAD and merged["calls"]["posix_fadvise"]["count"] == DEAD, merged
    after, _ = report(dead_dir)
    left = sum(name.endswith(".stats") for name in os.listdir(dead_dir))
    print(f"| stats file of a process that made one call | {blocks // 1024} KiB of shared memory (tmpfs blocks), 296 KiB apparent |")
    print(f"| `report` of {LIVE} live processes (median of 5) | {statistics.median(reads) * 1000:.0f} ms |")
    print(f"| `report` retiring {DEAD} dead files (one run) | {compact * 1000:.0f} ms, {left} files left |")
    print(f"| `report` of the {DEAD} once retired | {after * 1000:.0f} ms |")
    shutil.rmtree(work)

main()
