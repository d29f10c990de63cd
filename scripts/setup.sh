#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Install every build and test dependency, pinned, idempotently.
#
# - Debian bookworm packages (clang/lld/llvm 19, QEMU 7.2, kernel build deps).
# - rustup's rust-src for the machine's rustc (the one that builds the kernel).
# - bindgen-cli 0.72.1 (cargo install --locked) into $MSHV_CACHE/tools.
# - virtme-ng 1.42 from PyPI.
# - Debian's linux-source-7.3, downloaded (never installed) through a private
#   apt state for the trixie-backports suite, unpacked into $MSHV_CACHE/src.
#
# A second run with everything in place takes a few seconds.

source "$(dirname "$0")/lib.sh"

DEB_PKGS=(
	clang-$LLVM_VER libclang-$LLVM_VER-dev llvm-$LLVM_VER lld-$LLVM_VER
	make gcc flex bison bc libelf-dev libssl-dev cpio kmod rsync pahole
	qemu-system-x86 busybox-static
	libcap-dev uuid-dev pkg-config
	acpica-tools
)

need_deb() {
	local missing=()
	for p in "${DEB_PKGS[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	if ((${#missing[@]})); then
		log "apt: installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
	# The pins that matter are the major versions, checked here.
	clang-$LLVM_VER --version | grep -q "version $LLVM_VER\." ||
		die "clang-$LLVM_VER is not LLVM $LLVM_VER"
	qemu-system-x86_64 --version | grep -q 'version 7\.2' ||
		log "warning: QEMU is not 7.2 ($(qemu-system-x86_64 --version | head -1))"
}

need_rust() {
	command -v rustc >/dev/null || die "rustc not found (rustup is expected)"
	local sysroot
	sysroot=$(rustc --print sysroot)
	if [[ ! -d $sysroot/lib/rustlib/src/rust/library/core ]]; then
		log "rustup: adding rust-src"
		rustup component add rust-src >/dev/null
	fi
	rustup component list --installed 2>/dev/null | grep -q '^clippy' ||
		rustup component add clippy >/dev/null
	rustup component list --installed 2>/dev/null | grep -q '^rustfmt' ||
		rustup component add rustfmt >/dev/null
}

need_bindgen() {
	if [[ -x $TOOLS/bin/bindgen ]] && $TOOLS/bin/bindgen --version | grep -q "$BINDGEN_VER"; then
		return
	fi
	log "cargo: installing bindgen-cli $BINDGEN_VER (about 2 minutes)"
	cargo install -q --locked bindgen-cli --version "$BINDGEN_VER" --root "$TOOLS"
}

need_vng() {
	if command -v vng >/dev/null && vng --version 2>/dev/null | grep -q "$VIRTME_NG_VER"; then
		return
	fi
	log "pip: installing virtme-ng $VIRTME_NG_VER"
	python3 -m pip install -q --disable-pip-version-check "virtme-ng==$VIRTME_NG_VER"
	hash -r
	command -v vng >/dev/null || die "vng not on PATH after pip install"
}

# Download Debian's linux-source-7.3 with a private apt state, so the system's
# sources stay bookworm-only and no trixie package is ever installed.
need_linux_src() {
	local apt=$MSHV_CACHE/apt
	if [[ -f $MSHV_CACHE/src/.unpacked ]]; then
		return
	fi
	mkdir -p "$apt/sources" "$apt/lists/partial" "$apt/cache/archives/partial" "$MSHV_CACHE/src"
	cat >"$apt/sources/trixie-backports.sources" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: $LINUX_SRC_SUITE
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	local opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$apt/sources"
		-o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
		-o Debug::NoLocking=1 -o APT::Sandbox::User=root)
	log "apt (private, $LINUX_SRC_SUITE): downloading $LINUX_SRC_PKG"
	apt-get "${opts[@]}" update -qq
	(cd "$apt" && rm -f ./*.deb && apt-get "${opts[@]}" download "$LINUX_SRC_PKG" >/dev/null)
	local deb
	deb=$(ls "$apt"/linux-source-*.deb | head -1)
	rm -rf "$MSHV_CACHE/src.tmp" && mkdir -p "$MSHV_CACHE/src.tmp"
	dpkg-deb -x "$deb" "$MSHV_CACHE/src.tmp/pkg"
	tar -C "$MSHV_CACHE/src.tmp" -xf "$MSHV_CACHE"/src.tmp/pkg/usr/src/linux-source-*.tar.xz
	rm -rf "$MSHV_CACHE/src.tmp/pkg"
	rm -rf "$MSHV_CACHE/src"
	mv "$MSHV_CACHE/src.tmp" "$MSHV_CACHE/src"
	dpkg-deb -f "$deb" Version >"$MSHV_CACHE/src/.version"
	touch "$MSHV_CACHE/src/.unpacked"
	log "linux source: $(cat "$MSHV_CACHE/src/.version")"
}

main() {
	mkdir -p "$MSHV_CACHE" "$TOOLS"
	need_deb
	need_rust
	need_vng
	need_linux_src
	need_bindgen
	log "setup complete (cache: $MSHV_CACHE)"
}

main "$@"
