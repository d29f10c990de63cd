#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# In the VM booted by alias.plan: the functions VENDOR:DEVICE behind the
# PCIe-to-PCI bridge alias to the bridge's secondary bus, device 0, so
# mshv_hvcall gives both one hypervisor device id (of another bus than
# their own), and the simulated hypervisor knows that id once, in the
# default domain. The function on the root bus keeps its own id.
#
#   check-alias-ids.sh VENDOR:DEVICE

set -u
source "$(dirname "$0")/pci-lib.sh"
ids=/sys/kernel/debug/mshv_hvcall/pci_ids
dump=/sys/kernel/debug/mshv_hvcall/dump
want="0x${1%%:*}:0x${1##*:}"
bad=0
behind=()
cat "$ids"
for x in /sys/bus/pci/devices/*; do
	[[ "$(cat "$x/vendor"):$(cat "$x/device")" == "$want" ]] || continue
	b=$(basename "$x")
	id=$(pci_devid "$b") || { echo "FAIL: $b has no id"; bad=1; continue; }
	own=$(printf '0x%016x' $((1 << 62 | 0x${b:0:4} << 16 | 0x${b:5:2} << 8 | 0x${b:8:2} << 3 | 0x${b:11:1})))
	if [[ ${b:5:2} == 00 ]]; then
		[[ $id == "$own" ]] || { echo "FAIL: $b on the root bus has $id, not its own $own"; bad=1; }
	else
		behind+=("$b:$id")
		[[ $id != "$own" ]] || { echo "FAIL: $b behind the bridge has its own requester id"; bad=1; }
	fi
	n=$(grep -c "^device $id " "$dump")
	((n == 1)) || { echo "FAIL: the simulator lists $id $n times"; bad=1; }
	grep -q "^device $id domain default$" "$dump" || { echo "FAIL: $id not in the default domain"; bad=1; }
done
if ((${#behind[@]} != 2)) || [[ ${behind[0]##*:} != "${behind[1]##*:}" ]]; then
	echo "FAIL: want two functions behind the bridge with one id, got: ${behind[*]}"
	bad=1
fi
((bad)) || echo "ok: ${behind[*]} share one hypervisor device id"
exit $bad
