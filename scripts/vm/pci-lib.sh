# SPDX-License-Identifier: GPL-2.0
#
# Sourced by the VM helper scripts.

# pci_function VENDOR:DEVICE: the sysfs path of the first PCI function with
# that id (hexadecimal, as lspci -n shows it); fails if there is none.
pci_function() {
	local want="0x${1%%:*}:0x${1##*:}" x
	for x in /sys/bus/pci/devices/*; do
		if [[ "$(cat "$x/vendor"):$(cat "$x/device")" == "$want" ]]; then
			echo "$x"
			return 0
		fi
	done
	echo "no PCI function $1" >&2
	return 1
}

# pci_devid SSSS:BB:DD.F: the hypervisor's device id of a function, as
# mshv_hvcall computes it for the IOMMU driver and the simulator alike (DMA
# aliases included); needs mshv_hvcall loaded.
pci_devid() {
	awk -v b="$1" '$1 == b { print $2; found = 1 } END { exit !found }' \
		/sys/kernel/debug/mshv_hvcall/pci_ids
}

# kmsg_mark: writes a unique marker line to the kernel log and prints it, for
# kmsg_since.
kmsg_mark() {
	local m="mshv-mark $$-$RANDOM-$(date +%s%N)"
	echo "$m" >/dev/kmsg
	echo "$m"
}

# kmsg_since MARKER: the kernel log after the line MARKER (nothing if the
# marker is not found), so that a check sees only what its own step logged.
kmsg_since() {
	dmesg | awk -v m="$1" 'found { print } index($0, m) { found = 1 }'
}

# step_kmsg PATTERN: the kernel log of the newest plan step whose line
# matches PATTERN (grep -E), between its "mshv-step N begin" and "end".
step_kmsg() {
	local f n=""
	for f in "${MSHV_STEPS:?}"/*.step; do
		grep -qE -- "$1" "$f" && n=$(basename "$f" .step)
	done
	[[ -n $n ]] || return 1
	dmesg | awk -v b="mshv-step $n begin" -v e="mshv-step $n end" \
		'index($0, e) { on = 0 } on { print } index($0, b) { on = 1 }'
}
