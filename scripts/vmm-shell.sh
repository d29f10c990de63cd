#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Run a VMM author's own command inside the test VM, on the whole stack:
#
#   scripts/vmm-shell.sh -- COMMAND [ARGS...]
#
# It boots the test kernel (TCG) with the simulated hypervisor
# (mshv_hvcall simulate=1, which provides /dev/mshv), hyperv_iommu_root and
# the mshv-vfio bridge loaded, and QEMU's pci-testdev bound to vfio-pci; runs
# COMMAND there as root, in the current directory (the VM sees the host's
# file system), with the device's PCI address in MSHV_VFIO_BDF; prints its
# output; and exits with COMMAND's status, or 1 if the kernel logged a splat
# (WARNING, BUG, KASAN, lockdep, ...) while the stack was loaded or the VM did
# not finish. Documentation/mshv-vfio-bridge.rst, "Testing your VMM".
#
# Example:
#   scripts/vmm-shell.sh -- sh -c 'samples/rust-vmm-vfio/target/release/mshv-vfio-sample "$MSHV_VFIO_BDF"'

source "$(dirname "$0")/lib.sh"

[[ ${1:-} == -- ]] || die "usage: $0 -- COMMAND [ARGS...]"
shift
(($#)) || die "usage: $0 -- COMMAND [ARGS...]"

"$TOP/scripts/setup.sh" >&2
KB=$("$TOP/scripts/kernel.sh" test)
make -s -C "$TOP" KDIR="$KB" W=e >&2

# Under the cache, not /tmp: the guest has its own /tmp.
mkdir -p "$MSHV_CACHE/runs"
out=$(mktemp -d "$MSHV_CACHE/runs/vmm-shell-$(date +%Y%m%d-%H%M%S).XXXX")
# The command exactly as given (quoted for the guest's bash), in the same
# directory, with MSHV_VFIO_BDF set; to use the address in an argument, run a
# shell: -- sh -c 'my-vmm --device "$MSHV_VFIO_BDF"'.
{
	echo "cd $(printf %q "$PWD") || exit 125"
	echo 'export MSHV_VFIO_BDF=$VFIO_SELFTESTS_BDF'
	printf 'exec'
	printf ' %q' "$@"
	echo
} >"$out/command.sh"

cat >"$out/vmm-shell.plan" <<PLAN
modprobe vfio-pci
insmod drivers/hv/hvcall/mshv_hvcall.ko simulate=1
insmod drivers/iommu/hyperv-root/hyperv_iommu_root.ko
insmod drivers/hv/mshv-vfio/mshv_vfio.ko
vfio-device 1b36:0005
run vmm-command bash $out/command.sh
PLAN

"$TOP/scripts/vm/run.sh" --kernel "$KB" --out "$out/vm" --quiet "$out/vmm-shell.plan" \
	>"$out/vm.log" 2>&1 || true

step=$(grep -l '^run vmm-command' "$out"/vm/steps/*.step 2>/dev/null | head -1)
if [[ -n $step ]]; then
	cat "${step%.step}.log"
	rc=$(cat "${step%.step}.rc" 2>/dev/null || echo 1)
else
	echo "vmm-shell: the command did not run; the stack's steps:" >&2
	for s in "$out"/vm/steps/*.step; do
		[[ -e $s ]] || continue
		echo "  $(cat "$s"): exit $(cat "${s%.step}.rc" 2>/dev/null || echo '?')" >&2
		sed 's/^/    /' "${s%.step}.log" >&2
	done
	rc=1
fi

# Splats, taints, a VM that did not finish, or a stack step that failed: red
# even if the command succeeded. The command's own failure is its status.
python3 "$TOP/scripts/vm/collect.py" "$out/vm" >"$out/verdict" 2>&1 || true
if grep '^FAIL' "$out/verdict" | grep -qv '^FAIL run:vmm-command\b'; then
	echo "vmm-shell: the kernel or the stack failed (details in $out/verdict):" >&2
	grep '^FAIL' "$out/verdict" | grep -v '^FAIL run:vmm-command\b' >&2
	[[ $rc == 0 ]] && rc=1
fi
exit "$rc"
