#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build and install the kselftests the VM runs, for one kernel build:
#
#   scripts/selftests.sh test|perf|KDIR
#
# - upstream tools/testing/selftests/{iommu,vfio} from the same 7.3 source
#   (built once per kernel build and cached);
# - the project's own tools/testing/selftests/mshv-passthru (rebuilt every
#   time; it is small).
#
# Everything lands in $MSHV_CACHE/selftests/<kernel build name>, with the
# usual run_kselftest.sh and kselftest-list.txt at the top.

source "$(dirname "$0")/lib.sh"

kernel=${1:-test}
case $kernel in
test | perf) KB=$("$TOP/scripts/kernel.sh" "$kernel") ;;
*) KB=$kernel ;;
esac
KSRC=$(readlink -f "$KB/source")
KSFT_SRC=$KSRC/tools/testing/selftests
DEST=$MSHV_CACHE/selftests/$(basename "$KB")
HDRS="-isystem $KB/usr-headers/include"
UPSTREAM="iommu vfio"

exec 9>"$MSHV_CACHE/selftests.lock"
flock 9

# Drop selftest builds of kernel builds that no longer exist.
for d in "$MSHV_CACHE"/selftests/*; do
	[[ -d $d && ! -d $MSHV_CACHE/kernels/$(basename "$d") ]] && rm -rf "$d"
done

if [[ ! -f $DEST/.upstream-done ]]; then
	log "selftests: building upstream $UPSTREAM for $(basename "$KB")"
	rm -rf "$DEST"
	mkdir -p "$DEST"
	env -u LLVM make -s -C "$KSFT_SRC" TARGETS="$UPSTREAM" O="$DEST/build" \
		KHDR_INCLUDES="$HDRS" INSTALL_PATH="$DEST/install" install \
		>"$DEST/build.log" 2>&1 || { tail -30 "$DEST/build.log"; die "upstream selftest build failed"; }
	cp "$DEST/install/kselftest-list.txt" "$DEST/upstream-list.txt"
	touch "$DEST/.upstream-done"
fi

log "selftests: building tools/testing/selftests/mshv-passthru"
own=$TOP/tools/testing/selftests/mshv-passthru
rm -rf "$DEST/build/mshv-passthru" "$DEST/install/mshv-passthru"
mkdir -p "$DEST/build/mshv-passthru"
env -u LLVM make -s -C "$own" KSFT_SRC="$KSFT_SRC" OUTPUT="$DEST/build/mshv-passthru" \
	KHDR_INCLUDES="$HDRS" INSTALL_PATH="$DEST/install/mshv-passthru" install ||
	die "mshv-passthru selftest build failed"
{
	cat "$DEST/upstream-list.txt"
	env -u LLVM make -s --no-print-directory -C "$own" KSFT_SRC="$KSFT_SRC" \
		OUTPUT="$DEST/build/mshv-passthru" COLLECTION=mshv-passthru emit_tests
} >"$DEST/install/kselftest-list.txt"
# The kernel's own kmemleak sample, for the runner's self-test (a leak that
# kmemleak reliably reports), built out of tree from the same source.
mkdir -p "$DEST/build/kmemleak-test" "$DEST/install/mshv-passthru/modules"
cp "$KSRC/samples/kmemleak/kmemleak-test.c" "$DEST/build/kmemleak-test/"
echo 'obj-m += kmemleak-test.o' >"$DEST/build/kmemleak-test/Kbuild"
make -s -C "$KB" M="$DEST/build/kmemleak-test" LLVM=-$LLVM_VER modules >/dev/null ||
	die "kmemleak-test module build failed"
cp "$DEST/build/kmemleak-test/kmemleak-test.ko" "$DEST/install/mshv-passthru/modules/"
ln -sfn install "$DEST/run"
echo "$DEST/install"
