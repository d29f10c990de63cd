#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# In the VM, after hyperv_iommu_root registered: the unbound PCI functions
# are in IOMMU groups with the identity default domain and the x86 MSI
# window reserved; functions that were bound before registration are not
# claimed (no group) and say so in the log of the step that loaded the
# driver (not anywhere in the boot's log). Used by the test plans.

set -u
source "$(dirname "$0")/pci-lib.sh"
load_log=$(step_kmsg '^insmod .*hyperv_iommu_root\.ko') || {
	echo "FAIL: no step loaded hyperv_iommu_root"
	exit 1
}
bad=0
for d in /sys/bus/pci/devices/*; do
	bdf=$(basename "$d")
	if [[ -e $d/driver && ! -e $d/iommu_group ]]; then
		if grep -q "$bdf: not claimed: bound to" <<<"$load_log"; then
			echo "ok: $bdf bound before registration, not claimed"
		else
			echo "FAIL: $bdf has no group and no log line"; bad=1
		fi
		continue
	fi
	g=$d/iommu_group
	if [[ ! -e $g ]]; then
		echo "FAIL: $bdf (unbound) has no IOMMU group"; bad=1
		continue
	fi
	t=$(cat "$g/type")
	if ! grep -q "^0x00000000fee00000 0x00000000feefffff msi$" "$g/reserved_regions"; then
		echo "FAIL: $bdf: MSI window not reserved:"; cat "$g/reserved_regions"; bad=1
	elif [[ $t != identity && $(readlink "$d/driver") != */vfio-pci ]]; then
		echo "FAIL: $bdf: default domain type $t"; bad=1
	else
		echo "ok: $bdf group $(basename "$(readlink "$g")") $t, MSI window reserved"
	fi
done
exit $bad
