#!/usr/bin/env bash
# Benchmarks of issue 5: builds the shim in release mode, compiles the C
# workloads in scripts/bench/ into a temporary directory, runs every case
# with its arms alternating, and prints a Markdown table (medians, ratio to
# the baseline measured in the same run, target, verdict). BENCHMARKS.md
# holds the latest table. Never run as a timed test: CI may run --quick as
# a smoke test only.
#
#   scripts/bench.sh [--quick] [--rounds N] [--output FILE] [--no-build] [--cases LIST]
#                    [--compare-shim LIBRARY]
#
# --quick shrinks every count (a smoke run); --rounds N keeps the full counts
# but runs N rounds of each alternation instead of 7 (5 for the scenario).
# --no-build uses target/release as it is (e.g. while the work tree does not
# build); by default the workspace is built in release mode first. --cases
# runs a comma-separated subset (loop, fdatasync, scenario, tools, startup,
# host-budget, musl, fork), for work on one of them; the record is a full run.
# --compare-shim adds another build of libfadvise_shim.so (say, of the commit
# before a change) to cases 1, 5 and 9, in the same rounds as this one.
#
# Needs: cc, g++ with libgoogle-glog-dev, python3, eatmydata, musl-gcc (case
# 8; skipped without it); strace, perf
# and bpftrace are used when present (root is needed for perf trace and
# bpftrace). Scratch files go under $BENCH_TMPDIR (default /var/tmp), which
# must be a real file system: posix_fadvise is a no-op on tmpfs.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=()
rounds=()
output=()
cases=()
compare=()
build=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=(--quick) ;;
    --rounds) rounds=(--rounds "$2"); shift ;;
    --no-build) build=no ;;
    --output) output=(--output "$(realpath -m "$2")"); shift ;;
    --cases) cases=(--cases "$2"); shift ;;
    --compare-shim) compare=(--compare-shim "$(realpath "$2")"); shift ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

# The built-in default arms must measure the built-in default.
if [ -e /etc/fadvise-shim/policy.toml ]; then
  echo "bench.sh: /etc/fadvise-shim/policy.toml exists and would replace the built-in default; move it away first" >&2
  exit 1
fi
unset LD_PRELOAD FADVISE_SHIM_POLICY FADVISE_SHIM_DUMP_DIR FADVISE_SHIM_ON_EXIT FADVISE_SHIM_STATS_DIR

if [ "$build" = yes ]; then
  cargo build --release --workspace --quiet
fi
shim=target/release/libfadvise_shim.so
cli=target/release/fadvise-shim
for artifact in "$shim" "$cli"; do
  [ -e "$artifact" ] || { echo "bench.sh: $artifact was not built" >&2; exit 1; }
done

scratch_root=${BENCH_TMPDIR:-/var/tmp}
if [ "$(stat -f -c %T "$scratch_root")" = tmpfs ]; then
  echo "bench.sh: $scratch_root is tmpfs, where posix_fadvise does nothing; set BENCH_TMPDIR" >&2
  exit 1
fi
work=$(mktemp -d "$scratch_root/fadvise-bench.XXXXXX")
# The shim arms' stats files go to a directory of the run's own, on tmpfs
# like the default (/dev/shm/fadvise-shim/stats-<uid>), so that they count
# as shared memory and leave the user's directory alone.
if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
  stats=$(mktemp -d /dev/shm/fadvise-bench-stats.XXXXXX)
else
  stats=$(mktemp -d "$work/stats.XXXXXX")
fi
trap 'rm -rf "$work" "$stats" "$stats.fsync"' EXIT
mkdir "$work/bin"
for source in scripts/bench/*.c; do
  cc -O2 -Wall -o "$work/bin/$(basename "$source" .c)" "$source"
done
g++ -O2 -Wall -o "$work/bin/glog_real" scripts/bench/glog_real.cc -lglog
# Case 8 (musl, issue 22): the call loop, the spawner and a do-nothing
# program built with musl-gcc as dynamic executables, so that every process
# of the case runs under musl's loader.
if command -v musl-gcc >/dev/null; then
  mkdir "$work/bin/musl"
  for program in call_loop spawn_true true; do
    musl-gcc -O2 -Wall -o "$work/bin/musl/$program" "scripts/bench/$program.c"
  done
else
  echo "bench.sh: musl-gcc is missing (scripts/setup.sh installs musl-tools); case 8 is skipped" >&2
fi

# The floors: the least a C preload can do to time (case 1) or to drop
# (case 2) posix_fadvise, and, for case 5, an empty C library and an empty
# Rust cdylib (case 9 uses the empty C library too).
mkdir "$work/floors"
cc -O2 -Wall -shared -fPIC -o "$work/floors/timing-preload.so" scripts/bench/floors/timing_preload.c -ldl
cc -O2 -Wall -shared -fPIC -o "$work/floors/drop-preload.so" scripts/bench/floors/drop_preload.c
cc -O2 -shared -fPIC -o "$work/floors/empty-c.so" scripts/bench/floors/empty_preload.c
# Case 8's floors: the same three C libraries built with musl-gcc.
if command -v musl-gcc >/dev/null; then
  musl-gcc -O2 -Wall -shared -fPIC -o "$work/floors/musl-timing-preload.so" scripts/bench/floors/timing_preload.c
  musl-gcc -O2 -Wall -shared -fPIC -o "$work/floors/musl-drop-preload.so" scripts/bench/floors/drop_preload.c
  musl-gcc -O2 -shared -fPIC -o "$work/floors/musl-empty-c.so" scripts/bench/floors/empty_preload.c
fi
if cargo build --release --quiet --manifest-path scripts/bench/floors/empty_cdylib/Cargo.toml \
     --target-dir "$work/floors/target"; then
  cp "$work/floors/target/release/libempty_cdylib.so" "$work/floors/empty-rust.so"
else
  echo "bench.sh: the empty Rust cdylib did not build; case 5 goes without that floor" >&2
fi

# perf trace and bpftrace read syscall tracepoints from tracefs.
if [ ! -d /sys/kernel/tracing/events/syscalls ]; then
  mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
fi

python3 scripts/bench/harness.py --bin "$work/bin" --work "$work" --shim "$shim" --cli "$cli" \
  --example-policy policy.example.toml --floors "$work/floors" --stats-dir "$stats" \
  "${quick[@]}" "${rounds[@]}" "${output[@]}" "${cases[@]}" "${compare[@]}"
