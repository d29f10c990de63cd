#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Run every test of the project and end with "N passed, N failed, N skipped".
# This is the README's test command, and what .ci/run calls. It needs no
# setup: it installs dependencies and builds (or reuses) the test kernel.
#
#   scripts/run-tests.sh [--no-vm]
#
# 1. host: cargo test of the shared no_std code;
# 2. build: the modules with W=e, again with CLIPPY=1 W=e; rustfmt; checkpatch;
# 3. VM (test kernel, TCG): tools/testing/selftests/mshv-passthru/plans/all.plan
#    (module load/unload, KUnit, the project's kselftests, the upstream
#    iommufd suite, kmemleak, splat detection on every step);
# 4. VM, booted with two functions behind a PCIe-to-PCI bridge: alias.plan;
# 5. VM with tph_sim's SSDT: tph.plan (vfio_pci_tph on emulated TPH endpoints);
# 6. VM: the runner's own self-test (runner-selftest.plan), which must go red
#    on each kind of failure it is meant to catch.

source "$(dirname "$0")/lib.sh"

want_vm=1
[[ ${1:-} == --no-vm ]] && want_vm=0

RUN=$MSHV_CACHE/runs/tests-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN"
pass=0 fail=0 skip=0

result() { # status name [detail]
	case $1 in
	pass) pass=$((pass + 1)); echo "ok   $2" ;;
	skip) skip=$((skip + 1)); echo "skip $2${3:+: $3}" ;;
	*) fail=$((fail + 1)); echo "FAIL $2${3:+: $3}" ;;
	esac
}

finish() {
	echo
	echo "logs: $RUN"
	echo "$pass passed, $fail failed, $skip skipped"
	((fail == 0))
	exit $?
}

step() { # name log command...
	local name=$1 log=$2
	shift 2
	if "$@" >"$log" 2>&1; then
		result pass "$name"
	else
		result fail "$name" "see $log"
		tail -n 20 "$log" | sed 's/^/    /'
	fi
}

# --- setup -------------------------------------------------------------------
if ! "$TOP/scripts/setup.sh" >"$RUN/setup.log" 2>&1; then
	result fail setup "see $RUN/setup.log"
	tail -n 20 "$RUN/setup.log"
	finish
fi

# --- host tests ---------------------------------------------------------------
log "host: cargo test"
# A failing test is counted from the summary below, not by the exit status.
(cd "$TOP" && cargo test --locked -q) >"$RUN/cargo-test.log" 2>&1 || true
# Count the harness's own summary lines (doc tests included).
read -r cp cf < <(awk '/^test result:/ {
	for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
	END { print p + 0, f + 0 }' "$RUN/cargo-test.log")
if ((cp == 0 && cf == 0)); then
	result fail "host:cargo-test" "no test ran; see $RUN/cargo-test.log"
else
	pass=$((pass + cp)); fail=$((fail + cf))
	echo "host: cargo test: $cp passed, $cf failed"
	((cf == 0)) || grep -E '^test .* FAILED|panicked' "$RUN/cargo-test.log" | head -20
fi

# --- kernel and module builds -------------------------------------------------
log "kernel: test flavour"
if ! KB=$("$TOP/scripts/kernel.sh" test 2>"$RUN/kernel.log"); then
	result fail "build:kernel" "see $RUN/kernel.log"
	tail -n 20 "$RUN/kernel.log"
	finish
fi
result pass "build:kernel"
export KDIR=$KB

log "modules: make W=e, make CLIPPY=1 W=e"
(cd "$TOP" && make -s clean KDIR="$KB" >/dev/null 2>&1)
step "build:modules (W=e)" "$RUN/make.log" make -C "$TOP" KDIR="$KB" W=e
step "build:clippy (CLIPPY=1 W=e)" "$RUN/clippy.log" \
	bash -c "make -s -C '$TOP' clean KDIR='$KB' >/dev/null && make -C '$TOP' KDIR='$KB' CLIPPY=1 W=e"
step "style:rustfmt" "$RUN/rustfmt.log" make -C "$TOP" rustfmtcheck
step "style:checkpatch" "$RUN/checkpatch.log" make -C "$TOP" KDIR="$KB" checkpatch
step "build:rust-vmm-sample" "$RUN/sample.log" \
	bash -c "cd '$SAMPLE' && cargo build --release --locked && cargo clippy --release --locked -- -D warnings"

if ((!want_vm)); then
	finish
fi

# --- VM tests -----------------------------------------------------------------
if ! "$TOP/scripts/selftests.sh" "$KB" >"$RUN/selftests-build.log" 2>&1; then
	result fail "build:selftests" "see $RUN/selftests-build.log"
	tail -n 20 "$RUN/selftests-build.log"
	finish
fi
result pass "build:selftests"

plans=$TOP/tools/testing/selftests/mshv-passthru/plans
vm_plan() { # plan [run.sh options]
	local plan=$1 out
	shift
	out=$RUN/vm-$(basename "$plan" .plan)
	"$TOP/scripts/vm/run.sh" --kernel "$KB" --out "$out" --quiet "$@" "$plans/$plan" \
		>/dev/null 2>"$out.log" || true
	# collect.py exits 1 on any failure; the counts below carry that, and the
	# final summary line must still be printed.
	python3 "$TOP/scripts/vm/collect.py" "$out" >"$out.results" || true
	grep -v '^vm run' "$out.results"
	read -r vp vf vs < <(sed -n 's/^vm run .*: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\1 \2 \3/p' \
		"$out.results")
	pass=$((pass + ${vp:-0})); fail=$((fail + ${vf:-1})); skip=$((skip + ${vs:-0}))
	echo "vm $(basename "$plan"): ${vp:-0} passed, ${vf:-?} failed, ${vs:-0} skipped ($(cat "$out/wall-seconds" 2>/dev/null || echo ?) s)"
}

vm_plan all.plan
# Two functions behind a PCIe-to-PCI bridge (one hypervisor device id).
MSHV_QEMU_OPTS="-device pci-testdev -device pcie-pci-bridge,id=br0,bus=pcie.0,addr=0x10 \
-device pci-testdev,bus=br0,addr=1 -device pci-testdev,bus=br0,addr=2" vm_plan alias.plan
# Emulated TPH endpoints (tph_sim), the platform's steering-tag _DSM (an SSDT,
# compiled here) and the memory tph_sim's MSI-X endpoint decodes (ivshmem).
if aml=$("$TOP/scripts/tph-sim-aml.sh" "$RUN/tph-sim" 2>"$RUN/tph-sim-aml.log"); then
	result pass "build:tph-sim-ssdt"
	MSHV_QEMU_OPTS="-device pci-testdev -acpitable file=$aml \
-object memory-backend-ram,id=tph-carrier,size=8M -device ivshmem-plain,memdev=tph-carrier" \
		vm_plan tph.plan
else
	result fail "build:tph-sim-ssdt" "see $RUN/tph-sim-aml.log"
fi
vm_plan runner-selftest.plan --append "rcupdate.rcu_cpu_stall_timeout=3 rcupdate.rcu_cpu_stall_suppress_at_boot=1"

finish
