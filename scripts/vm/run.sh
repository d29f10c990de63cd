#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot a project kernel in QEMU (TCG) with virtme-ng and run a test plan.
#
#   scripts/vm/run.sh [options] PLAN
#
#   --kernel test|perf|DIR   kernel flavour or build dir (default: test)
#   --out DIR                where the guest writes results (default: a new dir
#                            under $MSHV_CACHE/runs)
#   --mem SIZE               guest memory (default 4G)
#   --append "k=v ..."       extra kernel command line
#   --hugepages "SZ:N ..."   hugetlb reservation (default "1G:1 2M:256" with
#                            4G or more of memory, none below)
#   --timeout SECS           kill the VM after this long (default 1500)
#   --quiet                  do not echo the console
#
# The plan format is described in scripts/vm/guest.sh. The verdict comes from
# scripts/vm/collect.py reading the files the guest wrote; vng's exit status
# is ignored because it is not reliable without udev.

source "$(dirname "$0")/../lib.sh"

kernel=test out= mem=4G append= timeout=1500 quiet=0 hugepages=default
while (($#)); do
	case $1 in
	--kernel) kernel=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--append) append="$append $2"; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--hugepages) hugepages=$2; shift 2 ;;
	--quiet) quiet=1; shift ;;
	-*) die "unknown option $1" ;;
	*) break ;;
	esac
done
plan=${1:?usage: run.sh [options] PLAN}
plan=$(realpath "$plan")

case $kernel in
test | perf) KB=$("$TOP/scripts/kernel.sh" "$kernel") ;;
*) KB=$kernel ;;
esac
[[ -f $KB/arch/x86/boot/bzImage ]] || die "no bzImage in $KB"

if [[ -z $out ]]; then
	out=$MSHV_CACHE/runs/$(date +%Y%m%d-%H%M%S)-$(basename "$plan" .plan)
fi
rm -rf "$out"
mkdir -p "$out"

# Everything the guest needs, passed through a file it sources. The guest
# sees the host's root file system (virtme-ng), so host paths work there.
KSFT=$MSHV_CACHE/selftests/$(basename "$KB")/install
cat >"$out/env" <<ENV
TOP=$TOP
KB=$KB
KSFT=$KSFT
OUT=$out
PLAN=$plan
ENV

# Boot parameters every run needs:
# - no IRQ remapping exists in the VM, so VFIO must accept unsafe interrupts;
# - hugetlb pages for the 2M and 1G variants of the VFIO and iommufd tests
#   (with 4G or more);
# - kmemleak is scanned explicitly by the plan;
# - panic on oops would lose the results, so oopses are reported and the run
#   goes on (collect.py turns them into failures).
cmdline="vfio_iommu_type1.allow_unsafe_interrupts=1 iommufd.allow_unsafe_interrupts=1"
# By default only with enough memory: the reservation is 1.5 GiB.
if [[ $hugepages == default ]]; then
	hugepages=
	[[ ${mem%G} =~ ^[0-9]+$ ]] && ((${mem%G} >= 4)) && hugepages="1G:1 2M:256"
fi
for hp in $hugepages; do
	cmdline+=" hugepagesz=${hp%%:*} hugepages=${hp#*:}"
done
cmdline+=" panic_on_warn=0 oops=none loglevel=4 $append"

# One host thread runs both vCPUs (round robin), not one thread each (MTTCG,
# QEMU's default). Under MTTCG a halted vCPU once missed its timer wake-up and
# the guest hung for good in the middle of a plan (RCU: "timer wakeup didn't
# happen", the CPU idle); one thread has no cross-thread kick to lose. On this
# 2-core host it costs nothing: alias.plan took 256 s this way, 305 s with
# MTTCG. MSHV_TCG_THREAD=multi brings MTTCG back.
accel="-accel tcg,thread=${MSHV_TCG_THREAD:-single}"

log "vm: booting $(basename "$KB") with plan $(basename "$plan") (results in $out)"
start=$(date +%s)
set +e
timeout --kill-after=30 "$timeout" \
	vng --run "$KB/arch/x86/boot/bzImage" --skip-modules --user root --force-9p \
	--disable-kvm --cpus 2 --memory "$mem" --verbose \
	--rwdir "$out" --cwd "$TOP" \
	--append "$cmdline" \
	--exec "bash $TOP/scripts/vm/guest.sh $out/env" \
	--qemu-opts="$accel ${MSHV_QEMU_OPTS:--device pci-testdev}" \
	</dev/null >"$out/console.log" 2>&1
vng_rc=$?
set -e
end=$(date +%s)
echo "$((end - start))" >"$out/wall-seconds"
echo "$vng_rc" >"$out/vng-rc"
((quiet)) || grep -v '^\s*$' "$out/console.log" | tail -n 5 >&2
log "vm: finished in $((end - start)) s (vng exit $vng_rc, ignored)"
echo "$out"
