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
# and, for hv-domain, how much of a map and of an unmap is spent inside the
# simulated hypervisor on average (mshv_hvcall/stats ns=):
#
#   bench dma-api hv-domain threads=1 simulated hypervisor per op: map 1.9 us, unmap 1.2 us
#
# The mask is 64 bits, so that dma-direct never bounces through swiotlb and
# the identity reference is the bare DMA API cost.
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
# FIELD of the line starting with KEY in FILE (0 if absent).
field() { [[ -r $3 ]] || { echo 0; return; }; awk -v k="$1" -v f="$2=" '$1 == k { for (i = 2; i <= NF; i++) if (index($i, f) == 1) { sub(f, "", $i); print $i } }' "$3"; }
calls() { field "$1" calls "$stats"; }

run() { # DOMAIN-TYPE LABEL THREADS
	echo "$1" >"$g/type" || return 1
	echo dma_map_benchmark >"$dev/driver_override"
	echo "$bdf" >/sys/bus/pci/drivers_probe
	[[ $(basename "$(readlink "$dev/driver")") == dma_map_benchmark ]] || return 1
	local m0 u0 out t0 t1
	m0=$(calls 0x00b3) u0=$(calls 0x00b4)
	t0="$(field 0x00b3 ns "$stats") $(field 0x00b4 ns "$stats")"
	out=$("$bench" -t "$3" -s "$secs" -g 1 -b 64) || { echo "$out"; return 1; }
	t1="$(field 0x00b3 ns "$stats") $(field 0x00b4 ns "$stats")"
	echo "$bdf" >"$dev/driver/unbind"
	echo >"$dev/driver_override"
	echo "$out" | sed 's/^/# /'
	echo "$out" | awk -v d="$2" -v t="$3" -v m=$(($(calls 0x00b3) - m0)) -v u=$(($(calls 0x00b4) - u0)) '
		/average map latency/ { split($3, a, ":"); map = a[2] }
		/average unmap latency/ { split($3, a, ":"); unmap = a[2] }
		END { printf "bench dma-api %s threads=%d: map %s us, unmap %s us (MAP hypercalls %d, UNMAP %d)\n", d, t, map, unmap, m, u }'
	echo "$t0 $t1 $(($(calls 0x00b3) - m0)) $(($(calls 0x00b4) - u0))" | awk -v d="$2" -v t="$3" '
		$5 > 0 && $6 > 0 { printf "bench dma-api %s threads=%d simulated hypervisor per op: map %.2f us, unmap %.2f us\n",
			d, t, ($3 - $1) / $5 / 1e3, ($4 - $2) / $6 / 1e3 }'
}

rc=0
for t in 1 2; do
	run DMA "$label" "$t" || rc=1
	run identity identity "$t" || rc=1
done
echo identity >"$g/type"
exit $rc
