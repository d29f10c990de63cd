#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# In the VM: the kernel's dma_map_benchmark (streaming dma_map_page, 4K,
# granule 1) through the function's DMA domain, and through the identity
# domain (dma-direct) as the reference measured in the same run, with 1 and
# 2 threads. The DMA domain is hyperv-iommu-root's (LABEL hv-domain, the
# default; load it with hv_iommu_dma=(BDF of the function)) or another
# IOMMU's, e.g. intel-iommu in a boot with QEMU's intel-iommu device (LABEL
# intel-iommu). The function must be unbound. Prints, per domain and thread
# count:
#
#   bench dma-api hv-domain threads=1: map 40.1 us, unmap 20.3 us (MAP hypercalls 2400, UNMAP 2400)
#
#   bench-dma-api.sh VENDOR:DEVICE [SECONDS [LABEL]]

set -u
source "$(dirname "$0")/pci-lib.sh"
id=$1
secs=${2:-5}
label=${3:-hv-domain}
bench=${KSFT_DIR:?}/mshv-passthru/dma_map_benchmark
stats=/sys/kernel/debug/mshv_hvcall/stats
dev=$(pci_function "$id") || exit 2
bdf=$(basename "$dev")
g=$dev/iommu_group
calls() { [[ -r $stats ]] || { echo 0; return; }; awk -v c="$1" '$1 == c { sub("calls=", "", $2); print $2 }' "$stats"; }

run() { # DOMAIN-TYPE LABEL THREADS
	echo "$1" >"$g/type" || return 1
	echo dma_map_benchmark >"$dev/driver_override"
	echo "$bdf" >/sys/bus/pci/drivers_probe
	[[ $(basename "$(readlink "$dev/driver")") == dma_map_benchmark ]] || return 1
	local m0 u0 out
	m0=$(calls 0x00b3) u0=$(calls 0x00b4)
	out=$("$bench" -t "$3" -s "$secs" -g 1) || { echo "$out"; return 1; }
	echo "$bdf" >"$dev/driver/unbind"
	echo >"$dev/driver_override"
	echo "$out" | sed 's/^/# /'
	echo "$out" | awk -v d="$2" -v t="$3" -v m=$(($(calls 0x00b3) - m0)) -v u=$(($(calls 0x00b4) - u0)) '
		/average map latency/ { split($3, a, ":"); map = a[2] }
		/average unmap latency/ { split($3, a, ":"); unmap = a[2] }
		END { printf "bench dma-api %s threads=%d: map %s us, unmap %s us (MAP hypercalls %d, UNMAP %d)\n", d, t, map, unmap, m, u }'
}

rc=0
for t in 1 2; do
	run DMA "$label" "$t" || rc=1
	run identity identity "$t" || rc=1
done
echo identity >"$g/type"
exit $rc
