#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# In the VM, with mshv_hvcall loaded as "simulate=1 l1vh=1" (the simulated
# partition is an L1VH, which has no device domains): hyperv_iommu_root
# refuses to load with EOPNOTSUPP and says why in the log of this load, and
# nothing issued a single hypercall (the simulator's statistics stay zero).

set -u
source "$(dirname "$0")/pci-lib.sh"
ko=${MSHV_PT_TOP:?}/drivers/iommu/hyperv-root/hyperv_iommu_root.ko
stats=/sys/kernel/debug/mshv_hvcall/stats
bad=0
fail() { echo "FAIL: $*"; bad=1; }

mark=$(kmsg_mark)
if out=$(insmod "$ko" 2>&1); then
	fail "hyperv_iommu_root loaded on an L1VH"
	echo 1 >/sys/kernel/debug/hyperv_iommu_root/release && rmmod hyperv_iommu_root
fi
grep -q "Operation not supported" <<<"$out" || fail "insmod did not fail with EOPNOTSUPP: $out"
kmsg_since "$mark" | grep -q "L1VH partition: no device domains" ||
	fail "no log line saying why"
for d in /sys/bus/pci/devices/*; do
	[[ -e $d/iommu_group ]] && fail "$(basename "$d") is in an IOMMU group"
done
cat "$stats"
calls=$(awk '$1 ~ /^0x/ { sub("calls=", "", $2); n += $2 } END { print n + 0 }' "$stats")
((calls == 0)) || fail "$calls hypercall(s) issued on the L1VH"
((bad)) || echo "ok: not loaded on L1VH (EOPNOTSUPP), no device claimed, no hypercall"
exit $bad
