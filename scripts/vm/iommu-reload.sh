#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# In the VM: load and unload hyperv_iommu_root N times (default 50). Each
# round loads it, binds the PCI function VENDOR:DEVICE to vfio-pci, maps and
# unmaps through a VFIO client (vfio_map_demo), unbinds the function, checks
# that the release control refuses while the function is bound and succeeds
# after, unloads the module, and checks that the simulator is back in its
# boot state (no domain, nothing mapped, all page-table pages free).
#
#   iommu-reload.sh VENDOR:DEVICE [N]
#
# mshv_hvcall (simulate=1) must be loaded and hyperv_iommu_root not.

set -u
source "$(dirname "$0")/pci-lib.sh"
id=$1
rounds=${2:-50}
ko=${MSHV_PT_TOP:?}/drivers/iommu/hyperv-root/hyperv_iommu_root.ko
demo=${KSFT_DIR:?}/mshv-passthru/vfio_map_demo
rel=/sys/kernel/debug/hyperv_iommu_root/release
dump=/sys/kernel/debug/mshv_hvcall/dump
dev=$(pci_function "$id") || exit 2
bdf=$(basename "$dev")

fail() { echo "round $r: $*"; exit 1; }

for ((r = 1; r <= rounds; r++)); do
	insmod "$ko" || fail "insmod failed"
	[[ -e $dev/iommu_group ]] || fail "$bdf not claimed"
	echo vfio-pci >"$dev/driver_override"
	echo "$bdf" >/sys/bus/pci/drivers_probe
	[[ $(basename "$(readlink "$dev/driver")") == vfio-pci ]] || fail "vfio-pci did not bind"
	"$demo" "$bdf" >/tmp/demo.out 2>&1 || { cat /tmp/demo.out; fail "VFIO client failed"; }
	if echo 1 >"$rel" 2>/dev/null; then
		fail "release succeeded while $bdf is bound to vfio-pci"
	fi
	echo "$bdf" >"$dev/driver/unbind"
	echo >"$dev/driver_override"
	echo 1 >"$rel" || fail "release refused with nothing in use"
	[[ ! -e $dev/iommu_group ]] || fail "$bdf still in a group after release"
	rmmod hyperv_iommu_root || fail "rmmod failed"
	if grep -q "^domain " "$dump"; then
		grep -v "^calls" "$dump"
		fail "a domain survived the unload"
	fi
	grep -q "^device $(pci_devid "$bdf") domain default$" "$dump" ||
		fail "$bdf is not back in the default domain"
done
grep "^partition self" "$dump"
echo "$rounds rounds: load, bind, map/unmap, unbind, release, unload"
