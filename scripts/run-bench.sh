#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the benchmarks on the perf kernel (no sanitizers) and print figures and
# ratios measured in the same VM run. Not part of the test command or CI.
#
#   scripts/run-bench.sh [--kernel perf|test|DIR]
#
# Absolute numbers under QEMU TCG say little; compare the ratios.

source "$(dirname "$0")/lib.sh"

kernel=perf
[[ ${1:-} == --kernel ]] && kernel=$2

"$TOP/scripts/setup.sh"
case $kernel in
test | perf) KB=$("$TOP/scripts/kernel.sh" "$kernel") ;;
*) KB=$kernel ;;
esac
make -s -C "$TOP" KDIR="$KB" W=e
"$TOP/scripts/selftests.sh" "$KB" >/dev/null

out=$MSHV_CACHE/runs/bench-$(date +%Y%m%d-%H%M%S)
"$TOP/scripts/vm/run.sh" --kernel "$KB" --out "$out" --quiet --mem 4G \
	--hugepages "2M:600" "$TOP/tools/testing/selftests/mshv-passthru/plans/bench.plan" >/dev/null
# The DMA API reference: intel-iommu in a second boot of the same kernel, with
# QEMU's VT-d in front of the same pci-testdev (intel_iommu=on; interrupt
# remapping off, which TCG's split irqchip would need), the same memory, and
# its own identity reference.
MSHV_QEMU_OPTS="-device intel-iommu,intremap=off -device pci-testdev" \
	"$TOP/scripts/vm/run.sh" --kernel "$KB" --out "$out/intel" --quiet --mem 4G --hugepages "2M:600" \
	--append "intel_iommu=on iommu.strict=1" \
	"$TOP/tools/testing/selftests/mshv-passthru/plans/bench-intel.plan" >/dev/null

logs=("$out"/steps/*.log "$out"/intel/steps/*.log)
echo "=== benchmark figures ($(basename "$KB"), $out) ==="
cat "${logs[@]}"
echo
echo "=== ratios (same run; intel-iommu from the second boot) ==="
awk '
	/^bench (mock|hv)-domain [^ ]+ (map|unmap): / {
		k = $2 " " $3 " " $4; sub(/:$/, "", k)
		split($0, a, " in "); split(a[2], b, " "); ms[k] = b[1] }
	/^bench hv-domain [^ ]+ (map|unmap) hypercalls: / {
		k = $3 " " $4; issued[k] = $6; reqmin[k] = $11; sub(/,/, "", reqmin[k]); ceilmin[k] = $13 }
	/^bench hv-domain [^ ]+ (map|unmap) time: / {
		k = $3 " " $4; ioctl[k] = $7; sim[k] = $11 }
	/^bench dma-api [^ ]+ threads=[0-9]+ simulated hypervisor per op: / {
		k = ((FILENAME ~ /\/intel\//) ? "2" : "1") " " $3 " " $4
		smap[k] = $10; sunmap[k] = $13; next }
	/^bench dma-api / {
		# Each boot has its own identity reference.
		k = ((FILENAME ~ /\/intel\//) ? "2" : "1") " " $3 " " $4; sub(/:$/, "", k)
		map[k] = $6; unmap[k] = $9 }
	END {
	for (k in ms) if (k ~ /^hv-domain/) {
		m = k; sub(/^hv-domain/, "mock-domain", m); o = substr(k, 11)
		if (!(m in ms) || ms[k] <= 0) continue
		printf "iommufd %s vs mock domain: %.3fx throughput", o, ms[m] / ms[k]
		if ((o in ioctl) && ioctl[o] - sim[o] > 0)
			printf "; %.3fx without the simulated hypervisor (ioctl %.1f ms, of it simulated hypervisor %.1f ms)",
				ms[m] / (ioctl[o] - sim[o]), ioctl[o], sim[o]
		printf "\n" }
	for (k in issued)
		printf "hypercalls %s: %d issued, %.3fx the request minimum (%d), %.1fx ceil(pages/reps per call) (%d)\n",
			k, issued[k], issued[k] / reqmin[k], reqmin[k], issued[k] / ceilmin[k], ceilmin[k]
	for (k in map) {
		split(k, p, " "); r = p[1] " identity " p[3]
		if (p[2] != "identity" && r in map && map[k] > 0)
			printf "dma-api %s %s vs identity (same boot): map %.3fx, unmap %.3fx throughput\n",
				p[2], p[3], map[r] / map[k], unmap[r] / unmap[k]
		if (k in smap)
			printf "dma-api %s %s without the simulated hypervisor: map %.2f us, unmap %.2f us (identity %.1f / %.1f us)\n",
				p[2], p[3], map[k] - smap[k], unmap[k] - sunmap[k], map[r], unmap[r] }
	}' "${logs[@]}" | sort
# Direct attach: the benchmark computes its ratios itself (both modes, one run).
grep -h '^bench direct-attach [0-9]* GiB ratio' "${logs[@]}" | sed 's/^bench //'
python3 "$TOP/scripts/vm/collect.py" "$out" | tail -n 1
python3 "$TOP/scripts/vm/collect.py" "$out/intel" | tail -n 1
