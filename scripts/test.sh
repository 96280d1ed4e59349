#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests use, builds
# both artifacts in release mode (the end-to-end tests run the real
# libfadvise_shim.so and fadvise-shim), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --workspace --locked
cargo test --release --workspace --locked
