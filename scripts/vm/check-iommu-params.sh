#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# In the VM: the module parameters of hyperv_iommu_root, each through a load
# and unload of the module.
#   - hv_iommu_skip naming the function: it is not claimed (no IOMMU group,
#     log line) while the other unbound functions are (V3's list never
#     matched);
#   - malformed hv_iommu_skip / hv_iommu_dma, hv_iommu_max_domains=0: the
#     load fails with EINVAL and nothing is registered;
#   - hv_iommu_dma naming the function: its default domain follows the
#     kernel's choice (DMA here: a paging domain in the hypervisor), the
#     DMA API works through it (dma_map_benchmark, GFP_ATOMIC map/unmap
#     hypercalls), and iommu_group/type switches it to identity and back.
#
#   check-iommu-params.sh VENDOR:DEVICE
#
# mshv_hvcall (simulate=1) must be loaded and hyperv_iommu_root not.

set -u
source "$(dirname "$0")/pci-lib.sh"
id=$1
ko=${MSHV_PT_TOP:?}/drivers/iommu/hyperv-root/hyperv_iommu_root.ko
bench=${KSFT_DIR:?}/mshv-passthru/dma_map_benchmark
rel=/sys/kernel/debug/hyperv_iommu_root/release
dump=/sys/kernel/debug/mshv_hvcall/dump
stats=/sys/kernel/debug/mshv_hvcall/stats
dev=$(pci_function "$id") || exit 2
bdf=$(basename "$dev")
[[ ! -e $dev/driver ]] || { echo "$bdf must be unbound"; exit 2; }
bad=0
fail() { echo "FAIL: $*"; bad=1; }
unload() { echo 1 >"$rel" && rmmod hyperv_iommu_root || fail "unload"; }
calls() { awk -v c="$1" '$1 == c { sub("calls=", "", $2); print $2 }' "$stats"; }

# The skip list matches (and says so in the log of this load).
mark=$(kmsg_mark)
insmod "$ko" "hv_iommu_skip=(${bdf})" || fail "insmod with hv_iommu_skip"
if [[ -e $dev/iommu_group ]]; then
	fail "$bdf claimed although in hv_iommu_skip"
elif ! kmsg_since "$mark" | grep -q "$bdf: not claimed (hv_iommu_skip)"; then
	fail "no log line for the skipped $bdf"
else
	echo "ok: hv_iommu_skip=($bdf): not claimed"
fi
others=0
for x in /sys/bus/pci/devices/*; do
	[[ $x != "$dev" && ! -e $x/driver && -e $x/iommu_group ]] && others=$((others + 1))
done
((others > 0)) || fail "no other function claimed"
echo "ok: $others other unbound function(s) claimed"
unload

# Malformed parameters: EINVAL, nothing registered.
for p in "hv_iommu_skip=(0000:00:0a)" "hv_iommu_dma=0000:00:0a.0" \
	"hv_iommu_max_domains=0" "hv_iommu_max_domains=2147483648"; do
	if out=$(insmod "$ko" "$p" 2>&1); then
		fail "insmod $p succeeded"
		unload
	elif [[ $out != *Invalid* ]]; then
		fail "insmod $p: $out (expected EINVAL)"
	elif [[ -e $dev/iommu_group || -d /sys/module/hyperv_iommu_root ]]; then
		fail "insmod $p left state behind"
	else
		echo "ok: $p refused with EINVAL"
	fi
done

# A translating DMA-API domain for the function, on request.
insmod "$ko" "hv_iommu_dma=(${bdf})" || fail "insmod with hv_iommu_dma"
g=$dev/iommu_group
t=$(cat "$g/type")
[[ $t == DMA ]] || fail "$bdf: default domain $t with hv_iommu_dma (expected DMA)"
grep -q "^domain " "$dump" || fail "no paging domain in the hypervisor for the DMA domain"
m0=$(calls 0x00b3)
echo dma_map_benchmark >"$dev/driver_override"
echo "$bdf" >/sys/bus/pci/drivers_probe
if [[ $(basename "$(readlink "$dev/driver")") == dma_map_benchmark ]]; then
	"$bench" -t 2 -s 1 -g 1 || fail "dma_map_benchmark through the DMA domain"
	m1=$(calls 0x00b3)
	echo "MAP hypercalls during the benchmark: $((m1 - m0))"
	((m1 > m0)) || fail "the DMA API issued no MAP hypercall"
	echo "$bdf" >"$dev/driver/unbind"
else
	fail "dma_map_benchmark did not bind"
fi
echo >"$dev/driver_override"
echo identity >"$g/type" || fail "switch to identity"
[[ $(cat "$g/type") == identity ]] || fail "type is $(cat "$g/type") after switching to identity"
grep -q "^domain " "$dump" && fail "the DMA domain survived the switch to identity"
echo DMA >"$g/type" || fail "switch back to DMA"
echo identity >"$g/type" || fail "switch to identity again"
echo "ok: hv_iommu_dma=($bdf): DMA domain, DMA API through it, identity <-> DMA"
unload
grep -q "^domain " "$dump" && fail "a domain survived the unload"
exit $bad
