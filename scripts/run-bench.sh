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
awk '/^bench / {
	split($0, a, "= "); split(a[2], b, " "); key = $2 " " $3 " " $4; sub(/:$/, "", key); gbs[key] = b[1] }
	END {
	for (op in gbs) if (op ~ /^mock-domain 2M/) {
		k4 = op; sub(/2M/, "4K", k4)
		if (k4 in gbs && gbs[k4] > 0)
			printf "%s vs %s: %.2fx\n", op, k4, gbs[op] / gbs[k4] }
	}' "$out"/steps/*.log
python3 "$TOP/scripts/vm/collect.py" "$out" | tail -n 1
