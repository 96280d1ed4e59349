#!/usr/bin/env bash
# Runs real programs' own test suites under the shim (issue 6, point 7) and
# compares them with runs without it. Not part of the normal test run: it
# takes a few minutes.
#
# The suites: CPython's own tests for the calls and signals the shim
# touches (posix_fadvise, fsync/fdatasync/sync, msync via mmap, signal
# handling, subprocess/posix_spawn/vfork, fork). Each is run three ways:
#   plain    without the shim
#   default  LD_PRELOAD with the built-in default policy (dumps on SIGUSR1)
#   nosignal LD_PRELOAD with `signal = "none"` (the shim leaves SIGUSR1 alone)
# with every process dumping at exit into a private directory, which is
# merged with `fadvise-shim report` to show what the suites called.
#
# Usage: scripts/real-suites.sh [PYTHON_TEST...]
# Needs: `cargo build --release --workspace` first; python3 with its `test`
# package. Prints one result line per run and the merged call table.
set -uo pipefail
cd "$(dirname "$0")/.."

library="$PWD/target/release/libfadvise_shim.so"
cli="$PWD/target/release/fadvise-shim"
[[ -f $library && -x $cli ]] || { echo "build first: cargo build --release --workspace" >&2; exit 2; }
python3 -m test --help >/dev/null 2>&1 || { echo "python3 has no test package" >&2; exit 2; }

suites=("$@")
[[ ${#suites[@]} -gt 0 ]] || suites=(test_os test_posix test_signal test_mmap test_fcntl test_threadsignals test_subprocess)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '[dump]\nsignal = "none"\n' > "$work/nosignal.toml"

# regrtest's own per-test timeout turns a hang into a failure with a traceback.
run_suites() {
    local name=$1; shift
    local log="$work/$name.log"
    local started=$SECONDS
    env "$@" python3 -m test -v -j2 --timeout 300 "${suites[@]}" > "$log" 2>&1
    local status=$?
    local summary
    summary=$(grep -E '^Total tests:' "$log" | tail -n 1)
    printf '%-9s exit %d in %3ds  %s\n' "$name" "$status" $((SECONDS - started)) "$summary"
    grep -E '^(FAIL|ERROR):|test_[a-z_]+ (failed|crashed|timed out)|Timeout \(' "$log" |
        sed -E 's/^[0-9:]+ load avg: [0-9. ]+//; s/^/          /' | sort -u
}

echo "suites: ${suites[*]}"
run_suites plain LD_PRELOAD=
mkdir "$work/dumps-default" "$work/dumps-nosignal"
run_suites default LD_PRELOAD="$library" FADVISE_SHIM_DUMP_DIR="$work/dumps-default" FADVISE_SHIM_ON_EXIT=1
run_suites nosignal LD_PRELOAD="$library" FADVISE_SHIM_POLICY="$work/nosignal.toml" \
    FADVISE_SHIM_DUMP_DIR="$work/dumps-nosignal" FADVISE_SHIM_ON_EXIT=1
echo
echo "calls made by the suites under the default policy:"
"$cli" report "$work/dumps-default"
