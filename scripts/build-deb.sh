#!/usr/bin/env bash
# Builds the Debian package from [package.metadata.deb] in Cargo.toml: both
# artifacts in release mode, then cargo-deb packages them into
# target/debian/fadvise-shim_VERSION-1_ARCH.deb. Prints the .deb's path as
# its last line. Other arguments go to cargo-deb (e.g. --output DIR);
# --no-build packages what target/release already holds.
# Installing the package does not touch /etc/ld.so.preload: see deploy/README.md.
# Needs cargo-deb:  cargo install cargo-deb --locked
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo deb --version >/dev/null 2>&1; then
  echo "build-deb.sh: cargo-deb is not installed (cargo install cargo-deb --locked)" >&2
  exit 3
fi
build=yes
pass=()
for argument in "$@"; do
  if [ "$argument" = --no-build ]; then build=no; else pass+=("$argument"); fi
done
if [ "$build" = yes ]; then
  # A plain `cargo deb` would build only the CLI, not the preload library.
  cargo build --release --workspace --locked >&2
fi
cargo deb --no-build --locked "${pass[@]}"
