#!/usr/bin/env bash
# Profiles one benchmark arm with `perf record` (user space and kernel) and
# prints where the time goes, by library and by symbol: the evidence behind
# the notes in BENCHMARKS.md. Builds the shim like bench.sh does.
#
#   scripts/bench/profile.sh observe|drop|path|exe|limit|spawn
set -euo pipefail
cd "$(dirname "$0")/../.."
arm=${1:?usage: profile.sh observe|drop|path|exe|limit|spawn}
cargo build --release --workspace --quiet
shim=$(realpath target/release/libfadvise_shim.so)
work=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/fadvise-profile.XXXXXX")
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/call_loop" scripts/bench/call_loop.c
cc -O2 -o "$work/spawn_true" scripts/bench/spawn_true.c
head -c 65536 /dev/urandom >"$work/page.dat"
mkdir -m 700 "$work/dumps"

rule='call = "posix_fadvise"'
case "$arm" in
  observe|spawn) policy= ;;
  drop) policy="[[rule]]\n$rule\naction = \"drop\"\n" ;;
  path) policy="[[rule]]\n$rule\npath = [\"/nonexistent/**\"]\naction = \"drop\"\n" ;;
  exe) policy="[[rule]]\n$rule\nexe = [\"nomatch\"]\naction = \"drop\"\n" ;;
  limit) policy="[[rule]]\n$rule\naction = \"limit\"\nrate = 1000000000\nburst = 1000000000\n" ;;
  *) echo "profile.sh: unknown arm $arm" >&2; exit 2 ;;
esac
env=(LD_PRELOAD="$shim" FADVISE_SHIM_DUMP_DIR="$work/dumps")
if [ -n "$policy" ]; then
  printf "$policy" >"$work/policy.toml"
  env+=(FADVISE_SHIM_POLICY="$work/policy.toml")
fi
if [ "$arm" = spawn ]; then
  command=("$work/spawn_true" 300)
else
  command=("$work/call_loop" fadvise "$work/page.dat" 1000000)
fi

echo "ns/call (for spawn: µs and page faults per spawn) under perf record:"
env "${env[@]}" perf record -q -g -o "$work/perf.data" "${command[@]}"
perf report -i "$work/perf.data" --no-children --stdio --sort comm,dso -g none 2>/dev/null | grep '%' | head -12
echo
perf report -i "$work/perf.data" --no-children --stdio --sort sym -g none --percent-limit 1.5 2>/dev/null | grep '%' | head -25
