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

echo "=== benchmark figures ($(basename "$KB"), $out) ==="
cat "$out"/steps/*.log
echo
echo "=== ratios (same run) ==="
awk '
	/^bench (mock|hv)-domain [^ ]+ (map|unmap): / {
		k = $2 " " $3 " " $4; sub(/:$/, "", k)
		split($0, a, "= "); split(a[2], b, " "); gbs[k] = b[1] }
	/^bench hv-domain [^ ]+ (map|unmap) hypercalls: / {
		k = $3 " " $4; issued[k] = $6; reqmin[k] = $11; sub(/,/, "", reqmin[k]); ceilmin[k] = $13 }
	/^bench dma-api / {
		k = $3 " " $4; sub(/:$/, "", k); map[k] = $6; unmap[k] = $9 }
	END {
	for (k in gbs) if (k ~ /^hv-domain/) {
		m = k; sub(/^hv-domain/, "mock-domain", m)
		if (m in gbs && gbs[m] > 0)
			printf "iommufd %s vs mock domain: %.3fx throughput\n", substr(k, 11), gbs[k] / gbs[m] }
	for (k in issued)
		printf "hypercalls %s: %d issued, %.3fx the request minimum (%d), %.1fx ceil(pages/reps per call) (%d)\n",
			k, issued[k], issued[k] / reqmin[k], reqmin[k], issued[k] / ceilmin[k], ceilmin[k]
	for (k in map) if (k ~ /^hv-domain/) {
		r = k; sub(/^hv-domain/, "identity", r)
		if (r in map && map[k] > 0)
			printf "dma-api %s vs identity: map %.3fx, unmap %.3fx throughput\n", substr(k, 11), map[r] / map[k], unmap[r] / unmap[k] }
	}' "$out"/steps/*.log | sort
python3 "$TOP/scripts/vm/collect.py" "$out" | tail -n 1
