#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the VM (started by scripts/vm/run.sh): executes a test plan and
# writes raw results for scripts/vm/collect.py. It judges nothing itself.
#
# Plan format: one step per line, '#' starts a comment.
#
#   modprobe MODULE [ARGS]       load an in-tree module from the kernel build
#   insmod PATH.ko [ARGS]        load a module (PATH relative to the repo top;
#                                $KSFT stands for the kselftest install dir)
#   rmmod MODULE                 unload a module
#   kunit SUITE [LABEL]          collect a KUnit suite's results (it must exist);
#                                LABEL names a second collection of one suite
#   kselftest COL[:TEST] [timeout=S] [label=L]
#                                run installed kselftests (run_kselftest.sh),
#                                optionally overriding the per-test timeout
#   run NAME CMD...              any command: exit 0 pass, 4 skip, else fail
#   vfio-device VENDOR:DEVICE    bind the first PCI function with that id to
#                                vfio-pci and export VFIO_SELFTESTS_BDF for
#                                the steps after it
#   vfio-group VENDOR:DEVICE     the same for every function with that id in
#                                the first IOMMU group that holds two or more
#                                of them (functions that alias to one
#                                requester id); exports the first one's BDF
#   kmemleak                     scan for leaks; any suspected leak fails
#   expect-red WHAT              the next step must be flagged (runner self-test)
#
# For step N the guest writes steps/N.step (the line), N.log (output) and
# N.rc (exit status), and marks the kernel log with "mshv-step N begin/end"
# so that collect.py can attribute every kernel splat to a step.

set -u
# shellcheck disable=SC1090
source "$1"

STEPS=$OUT/steps
mkdir -p "$STEPS"
# A step's output is written in the guest (tmpfs) and copied to $STEPS once
# the step ends: a program's output line by line would be one 9p write each
# to the host's directory, and QEMU's 9p server was seen to leave a write
# unanswered (the writer then waits forever in p9_client_rpc).
GTMP=$(mktemp -d /tmp/mshv-steps.XXXXXX)
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
export PATH=$PATH:/usr/sbin:/sbin
export MSHV_PT_TOP=$TOP
export KSFT_DIR=$KSFT
export MSHV_STEPS=$STEPS

kmsg() { echo "$*" >/dev/kmsg; }

# A hung step must not hang the run: commands get a time limit (exit 124).
T="timeout --kill-after=10 ${MSHV_STEP_TIMEOUT:-900}"

# bind_vfio BDF LOG: binds the function to vfio-pci (driver_override, unbind,
# drivers_probe); fails if it did not end up there.
bind_vfio() {
	local d=/sys/bus/pci/devices/$1
	echo vfio-pci >"$d/driver_override"
	[[ -e $d/driver ]] && echo "$1" >"$d/driver/unbind"
	echo "$1" >/sys/bus/pci/drivers_probe 2>>"$2"
	[[ $(basename "$(readlink "$d/driver")") == vfio-pci ]]
}

run_step() {
	local n=$1 kind=$2
	shift 2
	local log=$GTMP/$n.log rc=0
	case $kind in
	modprobe)
		$T modprobe -d "$KB/modroot" "$@" >"$log" 2>&1 || rc=$?
		;;
	insmod)
		local ko=${1//\$KSFT/$KSFT}
		shift
		[[ $ko == /* ]] || ko=$TOP/$ko
		$T insmod "$ko" "$@" >"$log" 2>&1 || rc=$?
		;;
	rmmod)
		$T rmmod "$@" >"$log" 2>&1 || rc=$?
		;;
	kunit)
		local f=/sys/kernel/debug/kunit/$1/results
		if [[ -r $f ]]; then
			cat "$f" >"$log"
		else
			echo "no KUnit suite $1 ($f missing)" >"$log"
			rc=2
		fi
		;;
	kselftest)
		# One run_kselftest.sh call per program, each introduced by a
		# "### kselftest COL:PROG" line: its output interleaves the
		# program's nested KTAP with its own summary lines, so only a
		# single program per call can be attributed reliably.
		if [[ -x $KSFT/run_kselftest.sh ]]; then
			local progs opt=() label= a
			for a in "${@:2}"; do
				case $a in
				timeout=*) opt=(-o "${a#timeout=}") ;;
				label=*) label="[${a#label=}]" ;;
				esac
			done
			if [[ $1 == *:* ]]; then
				progs=$1
			else
				progs=$(grep "^$1:" "$KSFT/kselftest-list.txt")
			fi
			: >"$log"
			[[ -n $progs ]] || { echo "no kselftest matches '$1'" >"$log"; rc=2; }
			for p in $progs; do
				echo "### kselftest $p$label" >>"$log"
				(cd "$KSFT" && ./run_kselftest.sh -t "$p" "${opt[@]}") >>"$log" 2>&1 || rc=$?
			done
		else
			echo "kselftests are not installed in $KSFT" >"$log"
			rc=2
		fi
		;;
	run)
		shift
		(cd "$TOP" && $T bash -c "$*") >"$log" 2>&1 || rc=$?
		;;
	kmemleak)
		local f=/sys/kernel/debug/kmemleak
		if [[ -w $f ]]; then
			# An object is reported only by a scan that finds it both
			# older than 5 s and unchanged (same checksum) since the
			# previous scan: scan, wait, scan (as netdev's CI does).
			echo scan >"$f"
			sleep 5
			echo scan >"$f"
			cat "$f" >"$log"
		else
			echo "kmemleak is not available" >"$log"
			rc=2
		fi
		;;
	vfio-device)
		local want="0x${1%%:*}:0x${1##*:}" d="" x bdf
		for x in /sys/bus/pci/devices/*; do
			if [[ "$(cat "$x/vendor"):$(cat "$x/device")" == "$want" ]]; then
				d=$x
				break
			fi
		done
		if [[ -z $d ]]; then
			echo "no PCI function $1" >"$log"
			rc=2
		else
			bdf=$(basename "$d")
			if bind_vfio "$bdf" "$log"; then
				export VFIO_SELFTESTS_BDF=$bdf
				echo "$bdf ($1) bound to vfio-pci, group $(basename "$(readlink "$d/iommu_group")")" >>"$log"
			else
				echo "$bdf ($1): binding to vfio-pci failed" >>"$log"
				rc=1
			fi
		fi
		;;
	vfio-group)
		local want="0x${1%%:*}:0x${1##*:}" x g grp="" bdf
		local -A members=()
		for x in /sys/bus/pci/devices/*; do
			[[ "$(cat "$x/vendor"):$(cat "$x/device")" == "$want" ]] || continue
			g=$(basename "$(readlink "$x/iommu_group")")
			members[$g]+=" $(basename "$x")"
		done
		for g in $(printf '%s\n' "${!members[@]}" | sort -n); do
			if (($(wc -w <<<"${members[$g]}") > 1)); then
				grp=$g
				break
			fi
		done
		if [[ -z $grp ]]; then
			echo "no IOMMU group with two functions $1" >"$log"
			rc=2
		else
			for bdf in ${members[$grp]}; do
				if ! bind_vfio "$bdf" "$log"; then
					echo "$bdf ($1): binding to vfio-pci failed" >>"$log"
					rc=1
				fi
			done
			bdf=$(awk '{ print $1 }' <<<"${members[$grp]}")
			export VFIO_SELFTESTS_BDF=$bdf
			echo "group $grp:${members[$grp]} bound to vfio-pci; VFIO_SELFTESTS_BDF=$bdf" >>"$log"
		fi
		;;
	expect-red)
		: # a marker for collect.py
		;;
	*)
		echo "unknown plan step '$kind'" >"$log"
		rc=2
		;;
	esac
	cp "$log" "$STEPS/$n.log" 2>/dev/null || : >"$STEPS/$n.log"
	echo "$rc" >"$STEPS/$n.rc"
}

cat /proc/sys/kernel/tainted >"$STEPS/000.taint"
n=0
while IFS= read -r line || [[ -n $line ]]; do
	line=${line%%#*}
	read -r -a words <<<"$line"
	((${#words[@]})) || continue
	n=$((n + 1))
	id=$(printf %03d "$n")
	echo "$line" >"$STEPS/$id.step"
	echo "== step $id: $line" >/dev/console
	kmsg "mshv-step $id begin"
	start=$(date +%s.%N)
	run_step "$id" "${words[@]}"
	end=$(date +%s.%N)
	kmsg "mshv-step $id end"
	cat /proc/sys/kernel/tainted >"$STEPS/$id.taint"
	echo "$start $end" >"$STEPS/$id.time"
done <"$PLAN"

dmesg >"$OUT/dmesg"
cat /proc/sys/kernel/tainted >"$OUT/tainted"
uname -r >"$OUT/uname"
echo "$n" >"$OUT/done"
echo "MSHV-VM-DONE steps=$n" >/dev/console
