#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# VM check of the test-only tph_sim module, run by a plan step after insmod:
#
#   smoke.sh        the emulated domain (8 Root Ports, 8 endpoints), their TPH
#                   capabilities and completer types, debugfs config equal to
#                   sysfs config, FLR and secondary bus reset clearing the TPH
#                   state, the MSI-X endpoint's BAR in the carrier's memory
#                   and its reset, the host bridge's ACPI companion and _DSM
#   smoke.sh gone   after rmmod: no emulated function, debugfs entry or
#                   memory window is left
#
# Exit 0 when every check passes.

set -u
D=/sys/kernel/debug/tph_sim
NAMES=(cap16 ds_only ext_limited no_tph no_completer msix chained chained_hidden)
# Per endpoint: its TPH Capability register (0: no TPH capability), the
# TPH Completer Supported field of its Root Port's DEVCAP2, and the header
# of its first extended capability (TPH's, or a DSN's before it).
TPH_CAP=(0x000f0307 0x00000004 0x00070307 0 0x000f0307 0x000f0507 0x000f0307 0x000f0307)
RP_COMP=(3 1 1 3 0 3 3 0)
FIRST=(0x00010017 0x00010017 0x00010017 0 0x00010017 0x00010017 0x11010003 0x11010003)
TPH=$((0x100))
fails=0

fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

# Under TCG every process costs, so config spaces are read once into CFG
# and registers are taken from there.
# load FILE: the config space FILE as hexadecimal, two digits a byte.
load() {
	CFG=$(od -An -v -tx1 "$1" | tr -d ' \n')
}

# reg N OFFSET: R = the N-byte little-endian register at OFFSET of CFG.
reg() {
	local i
	R=0
	for ((i = $1 - 1; i >= 0; i--)); do
		R=$((R << 8 | 0x${CFG:2 * ($2 + i):2}))
	done
}

# hex N OFFSET: H = the register as 0x and 2N hexadecimal digits.
hex() {
	reg "$1" "$2"
	printf -v H "0x%0$((2 * $1))x" "$R"
}

# attr FILE: A = the first line of a sysfs attribute.
attr() {
	A=
	read -r A <"$1"
}

# wr FILE OFFSET BYTE...: one config write of the bytes at OFFSET.
wr() {
	local f=$1 off=$2 b s=
	shift 2
	for b; do
		printf -v s '%s\\x%02x' "$s" "$b"
	done
	# shellcheck disable=SC2059
	printf "$s" | dd of="$f" bs=$# count=1 seek="$off" oflag=seek_bytes \
		conv=notrunc status=none || fail "write to $f at $off"
}

if [[ ${1:-} == gone ]]; then
	[[ -e $D ]] && fail "$D is left"
	grep -q tph_sim /proc/iomem && fail "a tph_sim memory window is left"
	for x in /sys/bus/pci/devices/*; do
		attr "$x/vendor"
		v=$A
		attr "$x/device"
		[[ $v == 0x1b36 && $A == 0x74?? ]] && fail "${x##*/} ($A) is left"
	done
	((fails == 0)) && echo "no tph_sim function left"
	exit $((fails != 0))
fi

[[ -d $D ]] || { echo "no $D: tph_sim is not loaded"; exit 1; }

dom=
for i in "${!NAMES[@]}"; do
	n=${NAMES[$i]}
	attr "$D/$n/bdf"
	bdf=$A
	dev=/sys/bus/pci/devices/$bdf
	echo "== $n: endpoint $bdf"
	[[ -e $dev ]] || { fail "$n: no $dev"; continue; }
	if [[ $bdf =~ ^([0-9a-f]{5,}):([0-9a-f]{2}):00\.0$ ]]; then
		[[ -n $dom ]] || dom=${BASH_REMATCH[1]}
		[[ ${BASH_REMATCH[1]} == "$dom" ]] || fail "$n: domain is not $dom"
	else
		fail "$n: BDF $bdf is not a device 0 in a 5-digit domain"
	fi
	load "$dev/config"
	hex 2 0
	vid=$H
	hex 2 2
	[[ $vid:$H == "0x1b36:$(printf 0x%04x $((0x7400 + i)))" ]] || fail "$n: id $vid:$H"
	hex 4 $TPH
	first=$H
	# The TPH capability: first, or after the DSN (chained: then a VSEC).
	at=$TPH
	[[ $first == 0x11010003 ]] && at=$((0x110))
	reg 4 $at
	hdr=$R
	hex 4 $((at + 4))
	cap=$H
	attr "$dev/reset_method"
	echo "   first ext cap $first, TPH cap $cap at $(printf 0x%x $at), reset_method '$A'"
	[[ $first == "$(printf 0x%08x $((FIRST[i])))" ]] || fail "$n: first extended capability $first"
	if [[ ${TPH_CAP[$i]} != 0 ]]; then
		(( (hdr & 0xfffff) == 0x10017 )) || fail "$n: no TPH capability at $at"
		[[ $cap == "${TPH_CAP[$i]}" ]] || fail "$n: TPH cap $cap"
	fi
	if ((at != TPH)); then
		((hdr >> 20 == 0x140)) || fail "$n: TPH's next is not 0x140"
		hex 4 $((0x140))
		[[ $H == 0x0001000b ]] || fail "$n: no vendor-specific capability at 0x140 ($H)"
	fi
	cmp "$dev/config" "$D/$n/config" || fail "$n: debugfs config != sysfs config"

	rp=$(readlink -f "$dev/..")
	rp=${rp##*/}
	rpdev=/sys/bus/pci/devices/$rp
	rpdrv=$(readlink "$rpdev/driver")
	load "$rpdev/config"
	hex 2 2
	rpid=$H
	reg 4 $((0x64))
	comp=$(((R >> 12) & 3))
	attr "$rpdev/class"
	echo "   Root Port $rp (device $rpid, class $A, driver ${rpdrv##*/}), TPH completer $comp"
	[[ $rp == "$dom:00:0$i.0" ]] || fail "$n: Root Port is $rp"
	[[ $rpid == "$(printf 0x%04x $((0x7480 + i)))" ]] || fail "$n: Root Port id $rpid"
	[[ $comp == "${RP_COMP[$i]}" ]] || fail "$n: Root Port completer $comp"
done
count=$(find /sys/bus/pci/devices/ -maxdepth 1 -name "$dom:*" | wc -l)
echo "domain $dom: $count functions"
((count == 2 * ${#NAMES[@]})) || fail "domain $dom has $count functions, not $((2 * ${#NAMES[@]}))"

# Every endpoint: BAR 0 (16 KiB) inside the carrier's window. The MSI-X
# endpoint: MSI-X (16 vectors, table at BAR 0 + 0, PBA at + 0x1000) after
# the PCIe capability.
grep -i tph_sim /proc/iomem
read -r wlo whi < <(sed -n 's/^ *\([0-9a-f]*\)-\([0-9a-f]*\) : tph_sim$/0x\1 0x\2/p' /proc/iomem)
echo "== BARs in the window $wlo-$whi"
[[ -n $wlo ]] || fail "no tph_sim window in /proc/iomem"
for n in "${NAMES[@]}"; do
	attr "$D/$n/bdf"
	read -r blo bhi _ <"/sys/bus/pci/devices/$A/resource"
	echo "   $n: BAR 0 $blo-$bhi"
	if ((bhi - blo + 1 != 0x4000 || blo < ${wlo:-0} || bhi > ${whi:-0})); then
		fail "$n: BAR 0 $blo-$bhi is not 16 KiB in $wlo-$whi"
	fi
done
echo "== msix: MSI-X"
attr "$D/msix/bdf"
dev=/sys/bus/pci/devices/$A
read -r blo bhi _ <"$dev/resource"
load "$dev/config"
hex 4 $((0x80))
[[ $H == 0x000f0011 ]] || fail "msix: MSI-X header and control $H"
hex 4 $((0x84))
[[ $H == 0x00000000 ]] || fail "msix: MSI-X table offset/BIR $H"
hex 4 $((0x88))
[[ $H == 0x00001000 ]] || fail "msix: MSI-X PBA offset/BIR $H"
# An FLR masks every entry and clears its tag (entry 3's vector control).
wr "$D/msix/bar0" $((3 * 16 + 12)) 0x00 0x00 0x34 0x12
CFG=$(od -An -v -tx1 -j $((3 * 16 + 12)) -N 4 "$D/msix/bar0" | tr -d ' \n')
reg 4 0
[[ $(printf 0x%08x "$R") == 0x12340000 ]] || fail "msix: bar0 preset reads $(printf 0x%08x "$R")"
echo flr >"$dev/reset_method" && echo 1 >"$dev/reset" || fail "msix: FLR failed"
echo default >"$dev/reset_method"
CFG=$(od -An -v -tx1 -j $((3 * 16 + 12)) -N 4 "$D/msix/bar0" | tr -d ' \n')
reg 4 0
[[ $(printf 0x%08x "$R") == 0x00000001 ]] || fail "msix: entry 3 control $(printf 0x%08x "$R") after FLR"
load "$dev/config"
hex 4 $((0x10))
[[ $H == "$(printf 0x%08x "$blo")" ]] || fail "msix: BAR 0 $H after FLR, not $blo"

# The host bridge's ACPI companion is the SSDT's device.
fw=$(readlink -f "/sys/devices/pci$dom:00/firmware_node")
attr "$fw/path"
echo "host bridge pci$dom:00: firmware_node $fw ($A)"
attr "$fw/hid"
[[ $A == TPHS0001 ]] || fail "host bridge companion is not TPHS0001"

# reset_check NAME METHOD: program TPH Control and the ST table through
# sysfs, check the write masks, reset with METHOD and check all is clear.
reset_check() {
	local n=$1 m=$2 dev
	attr "$D/$n/bdf"
	dev=/sys/bus/pci/devices/$A
	echo "== $n: reset by $m"
	attr "$dev/reset_method"
	[[ $A == *"$m"* ]] || { fail "$n: no $m reset"; return; }
	wr "$dev/config" $((TPH + 8)) 0xff 0xff 0xff 0xff
	wr "$dev/config" $((TPH + 12)) 0xcd 0xab
	wr "$dev/config" $((TPH + 12 + 2 * 7)) 0x34 0x12
	wr "$dev/config" $((TPH + 12 + 2 * 16)) 0x55 0x55
	load "$dev/config"
	hex 4 $((TPH + 8))
	[[ $H == 0x00000307 ]] || fail "$n: TPH Control $H after writing ones"
	hex 2 $((TPH + 12))
	[[ $H == 0xabcd ]] || fail "$n: ST[0] $H"
	hex 2 $((TPH + 26))
	[[ $H == 0x1234 ]] || fail "$n: ST[7] $H"
	hex 2 $((TPH + 44))
	[[ $H == 0x0000 ]] || fail "$n: $H past the table"
	cmp "$dev/config" "$D/$n/config" || fail "$n: debugfs config != sysfs config"
	echo "$m" >"$dev/reset_method" || fail "$n: cannot select $m"
	echo 1 >"$dev/reset" || fail "$n: $m reset failed"
	echo default >"$dev/reset_method"
	load "$D/$n/config"
	hex 4 $((TPH + 8))
	[[ $H == 0x00000000 ]] || fail "$n: TPH Control $H after $m"
	hex 2 $((TPH + 12))
	[[ $H == 0x0000 ]] || fail "$n: ST[0] $H after $m"
	hex 2 $((TPH + 26))
	[[ $H == 0x0000 ]] || fail "$n: ST[7] $H after $m"
	reg 2 $((0x48))
	((R & 0x8000)) && fail "$n: BCR_FLR reads 1"
	cmp "$dev/config" "$D/$n/config" || fail "$n: debugfs config != sysfs config"
}
reset_check cap16 flr
reset_check ext_limited bus

# The _DSM that pcie_tph_get_cpu_st() evaluates, on the host bridge companion.
echo "== _DSM"
cat "$D/dsm"
grep -qx 'func 0: buffer len 2: 0180' "$D/dsm" || fail "_DSM function 0"
grep -qx 'acpi_check_dsm(rev 7, BIT(0xF)): 1' "$D/dsm" || fail "acpi_check_dsm"
ncpu=0
while read -r cpu uid; do
	[[ $cpu == "$uid" ]] || fail "cpu $cpu has processor UID $uid"
	ncpu=$((ncpu + 1))
done < <(sed -n 's/^func 0xf cpu \([0-9]*\) uid \([0-9]*\): buffer len 8: 0\{16\} .*/\1 \2/p' "$D/dsm")
((ncpu == $(nproc --all))) || fail "$ncpu CPUs with an 8-byte zero ST entry, not $(nproc --all)"
echo "0 0x1234ab03" >"$D/st_info" || fail "st_info write"
echo "1 42" >"$D/st_info" || fail "st_info write (decimal)"
grep -qx 'func 0xf cpu 0 uid 0: buffer len 8: 03ab341200000000 value 0x000000001234ab03' \
	"$D/dsm" || fail "_DSM 0xF does not return what st_info set"
grep -qx '1 0x000000000000002a' "$D/st_info" || fail "st_info does not list UID 1"
echo "8 1" >"$D/st_info" 2>/dev/null && fail "st_info accepted UID 8"
echo "x" >"$D/st_info" 2>/dev/null && fail "st_info accepted 'x'"
cat "$D/st_info"
echo "0 0" >"$D/st_info"
echo "1 0" >"$D/st_info"

echo "$fails failure(s)"
exit $((fails != 0))
