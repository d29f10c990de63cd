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

# pci_devid SSSS:BB:DD.F: the hypervisor's PCI-type device id of a function
# without DMA alias, as the simulator's dump prints it.
pci_devid() {
	local b=$1
	printf '0x%016x' $((1 << 62 | 0x${b:0:4} << 16 | 0x${b:5:2} << 8 | 0x${b:8:2} << 3 | 0x${b:11:1}))
}
