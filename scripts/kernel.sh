#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build (or reuse) a project kernel from Debian's linux-source-7.3.
#
#   scripts/kernel.sh test|perf        build if needed, print the build dir
#   scripts/kernel.sh --dir test|perf  print the build dir it would use
#
# The build lives in $MSHV_CACHE/kernels/<flavour>-<key>, where <key> hashes
# the source package version, the config fragments, this recipe and the
# versions of rustc, clang and bindgen. A build dir with a completion stamp
# is reused; anything else is rebuilt from scratch.

source "$(dirname "$0")/lib.sh"

# Bump when the build steps below change in a way that changes the output.
RECIPE=2

usage() { die "usage: $0 [--dir] test|perf"; }

only_dir=0
[[ ${1:-} == --dir ]] && { only_dir=1; shift; }
flavour=${1:-}
[[ $flavour == test || $flavour == perf ]] || usage

KSRC=$MSHV_CACHE/src/linux-source-7.3
[[ -f $MSHV_CACHE/src/.unpacked ]] || die "no kernel source: run scripts/setup.sh"

frags=("$TOP/configs/base.config" "$TOP/configs/$flavour.config")
patches=("$TOP"/patches/linux-7.3/*.patch)
[[ -e ${patches[0]} ]] || patches=()

# Fixes the project carries on top of Debian's source (see patches/README),
# applied in place to the one source tree that every flavour builds from.
# The stack applied is recorded ($KSRC/.mshv-patches, with copies of the
# patches in .mshv-patches.d): when it differs from patches/, the recorded
# stack is taken off newest first and the current one applied in order.
# Patches are stacked (a later one may change lines an earlier one added),
# so no patch is ever checked on its own against a tree that has later ones.
# A tree patched before the record existed has some prefix of a stack
# applied: it is taken off newest first, each patch whose reverse applies.
apply_patches() {
	local rec=$KSRC/.mshv-patches want p
	want=$(for p in "${patches[@]}"; do
		printf '%s %s\n' "$(sha256sum <"$p" | cut -c1-16)" "$(basename "$p")"
	done)
	[[ -f $rec && $(cat "$rec") == "$want" ]] && return
	if [[ -d $rec.d ]]; then
		for p in $(find "$rec.d" -name '*.patch' | sort -r); do
			patch -d "$KSRC" -p1 -R -s -f <"$p" >/dev/null ||
				die "kernel source: cannot take off $(basename "$p"); unpack it again (rm $MSHV_CACHE/src/.unpacked; scripts/setup.sh)"
			log "kernel source: took off $(basename "$p")"
		done
	elif [[ ! -f $rec ]]; then
		for p in $(printf '%s\n' "${patches[@]}" | sort -r); do
			patch -d "$KSRC" -p1 -R -s -f --dry-run <"$p" >/dev/null 2>&1 || continue
			patch -d "$KSRC" -p1 -R -s -f <"$p" >/dev/null
			log "kernel source: took off $(basename "$p") (applied before the record)"
		done
	fi
	rm -rf "$rec" "$rec.d"
	mkdir -p "$rec.d"
	for p in "${patches[@]}"; do
		patch -d "$KSRC" -p1 -s -N <"$p" || die "patch does not apply: $p"
		cp "$p" "$rec.d/"
		log "kernel source: applied $(basename "$p")"
	done
	printf '%s\n' "$want" >"$rec"
}

kernel_key() {
	{
		echo "recipe $RECIPE"
		cat "$MSHV_CACHE/src/.version"
		cat "$KSRC/kernel/configs/kvm_guest.config"
		cat "${frags[@]}"
		((${#patches[@]} == 0)) || cat "${patches[@]}"
		rustc -vV
		clang-$LLVM_VER --version | head -1
		bindgen --version
	} | sha256sum | cut -c1-16
}

KB=$MSHV_CACHE/kernels/$flavour-$(kernel_key)
if ((only_dir)); then
	echo "$KB"
	exit 0
fi

# In-tree modules (vfio-pci, ...) installed with depmod into $KB/modroot; the
# guest loads them with `modprobe -d $KB/modroot`.
ensure_modroot() {
	[[ -f $KB/modroot/.done ]] && return
	rm -rf "$KB/modroot"
	make -s -C "$KSRC" O="$KB" LLVM=-$LLVM_VER INSTALL_MOD_PATH="$KB/modroot" \
		INSTALL_MOD_STRIP=1 DEPMOD=/sbin/depmod modules_install >/dev/null
	touch "$KB/modroot/.done"
}

# Keep one build per flavour: drop builds with other keys.
prune_old() {
	local d
	for d in "$MSHV_CACHE/kernels/$flavour"-*; do
		[[ -d $d && $d != "$KB" ]] || continue
		log "kernel ($flavour): removing stale build $d"
		rm -rf "$d"
	done
}

if [[ -f $KB/.mshv-complete ]]; then
	ensure_modroot
	log "kernel ($flavour): cached at $KB"
	echo "$KB"
	exit 0
fi

exec 9>"$MSHV_CACHE/kernels.lock"
flock 9
[[ -f $KB/.mshv-complete ]] && { echo "$KB"; exit 0; }

apply_patches
log "kernel ($flavour): building in $KB"
rm -rf "$KB"
mkdir -p "$KB"
start=$(date +%s)
mk() { make -s -C "$KSRC" O="$KB" LLVM=-$LLVM_VER "$@"; }
mk tinyconfig >/dev/null
"$KSRC/scripts/kconfig/merge_config.sh" -m -O "$KB" "$KB/.config" \
	"$KSRC/kernel/configs/kvm_guest.config" "${frags[@]}" >"$KB/merge.log"
mk olddefconfig
mk rustavailable >/dev/null || die "Rust is not available for this kernel build"

# Every option a fragment sets must survive olddefconfig, or the kernel is
# not the one the fragments describe.
known=$(grep -rhoE '^[[:space:]]*(menu)?config [A-Z0-9_]+' --include='Kconfig*' "$KSRC" |
	awk '{print $2}' | sort -u)
bad=0
for f in "${frags[@]}"; do
	while IFS= read -r line; do
		[[ $line == CONFIG_* ]] || continue
		opt=${line%%=*}
		grep -qx "${opt#CONFIG_}" <<<"$known" || { log "config: $opt does not exist in this kernel"; bad=1; continue; }
		case $line in
		CONFIG_*=n) grep -q "^$opt=" "$KB/.config" && { log "config: $opt is set, wanted n"; bad=1; } ;;
		CONFIG_*=*) grep -qx "$line" "$KB/.config" ||
			{ log "config: wanted $line, got '$(grep "^${line%%=*}=" "$KB/.config" || echo unset)'"; bad=1; } ;;
		esac
	done <"$f"
done
((bad == 0)) || die "config fragments did not apply (see above)"

mk -j"$(($(nproc) + 1))" all >"$KB/build.log" 2>&1 || { tail -40 "$KB/build.log"; die "kernel build failed"; }
mk headers_install INSTALL_HDR_PATH="$KB/usr-headers" >/dev/null
end=$(date +%s)
echo "$((end - start))" >"$KB/.build-seconds"
ensure_modroot
touch "$KB/.mshv-complete"
prune_old
log "kernel ($flavour): built in $((end - start)) s"
echo "$KB"
