# SPDX-License-Identifier: GPL-2.0
# Shared settings for the project's scripts (sourced, not executed).
#
# Everything that is downloaded or built lives in $MSHV_CACHE, outside the
# repository, so that sessions and CI reuse it. Nothing here touches the
# system's apt sources.

set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MSHV_CACHE=${MSHV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mshv-passthru}
TOOLS=$MSHV_CACHE/tools

# Pinned versions (see Documentation/testing.rst).
LLVM_VER=19
BINDGEN_VER=0.72.1
VIRTME_NG_VER=1.42
LINUX_SRC_PKG=linux-source-7.3
LINUX_SRC_SUITE=trixie-backports

export LLVM=-$LLVM_VER
export LIBCLANG_PATH=/usr/lib/llvm-$LLVM_VER/lib
export PATH=$TOOLS/bin:$HOME/.cargo/bin:$PATH

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The rust-vmm sample (samples/rust-vmm-vfio): built on the host with the
# crates in its Cargo.lock, run in the VM.
SAMPLE=$TOP/samples/rust-vmm-vfio
build_sample() {
	cargo build --release --locked -q --manifest-path "$SAMPLE/Cargo.toml"
}
