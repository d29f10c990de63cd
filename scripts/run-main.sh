#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The project's main job: build what is needed, boot the test kernel in QEMU
# and show the modules working on the simulated hypervisor.
#
#   scripts/run-main.sh [--kernel test|perf]
#
# No setup is needed first: dependencies, the kernel and the modules are
# built (or taken from the cache) on the way.

source "$(dirname "$0")/lib.sh"

kernel=test
[[ ${1:-} == --kernel ]] && kernel=$2

"$TOP/scripts/setup.sh"
KB=$("$TOP/scripts/kernel.sh" "$kernel")
make -s -C "$TOP" KDIR="$KB" W=e
build_sample
"$TOP/scripts/selftests.sh" "$KB" >/dev/null

out=$MSHV_CACHE/runs/main-$(date +%Y%m%d-%H%M%S)
"$TOP/scripts/vm/run.sh" --kernel "$KB" --out "$out" --quiet \
	"$TOP/tools/testing/selftests/mshv-passthru/plans/main.plan" >/dev/null

echo
echo "=== what the VM did (from $out) ==="
for s in "$out"/steps/*.step; do
	id=$(basename "$s" .step)
	printf -- '--- %s (exit %s)\n' "$(cat "$s")" "$(cat "$out/steps/$id.rc" 2>/dev/null || echo '?')"
	sed 's/^/    /' "$out/steps/$id.log" 2>/dev/null | head -n 80
done
echo
echo "=== verdict ==="
python3 "$TOP/scripts/vm/collect.py" "$out" | tail -n 30
