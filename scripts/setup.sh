#!/usr/bin/env bash
# Installs what the tests and benchmarks use on a fresh Debian machine:
# real programs to run under the shim (dd, sqlite3, glog, eatmydata, nocache),
# Go and static C (libc.a) and liburing for the supervisor and doctor tests,
# outside views of the kernel (strace), a real terminal for `top` (tmux),
# report validators (promtool, PyPI's hdrhistogram), debootstrap and
# cargo-deb for the base-image tests, musl-gcc and a static busybox for the
# musl (Alpine-like) programs and container root. Needs root.
set -euo pipefail
packages=(
  build-essential strace sqlite3 libsqlite3-dev eatmydata nocache
  libgoogle-glog-dev prometheus debootstrap hyperfine linux-perf postgresql
  python3 python3-pip util-linux coreutils xxd libjemalloc2 libtcmalloc-minimal4
  golang-go liburing-dev libc6-dev libjna-java default-jdk-headless tmux docker.io
  musl-tools busybox-static
)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
python3 -c 'import hdrh' 2>/dev/null || python3 -m pip install -q hdrhistogram
# Builds the Debian package in tests/install.rs (about 2.5 minutes, once).
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --quiet
