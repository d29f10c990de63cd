#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# In the VM, after a VFIO client closed its files: user space maps nothing
# now, so the simulated hypervisor must hold no device domain (hence no
# mapping), no page-table page of the root pool, and the function
# $VFIO_SELFTESTS_BDF must be back in the default (identity) domain.

set -u
dump=/sys/kernel/debug/mshv_hvcall/dump
bdf=${VFIO_SELFTESTS_BDF:?}
devid=$(printf '0x%016x' $((1 << 62 | 0x${bdf:0:4} << 16 | 0x${bdf:5:2} << 8 | 0x${bdf:8:2} << 3 | 0x${bdf:11:1})))
bad=0
grep -v "^calls" "$dump"
if grep -q "^domain " "$dump"; then
	echo "FAIL: a device domain is left"; bad=1
fi
if ! grep -q "^partition self pool .* used=0 " "$dump"; then
	echo "FAIL: page-table pages still used"; bad=1
fi
if ! grep -q "^device $devid domain default$" "$dump"; then
	echo "FAIL: $bdf ($devid) is not in the default domain"; bad=1
fi
((bad)) || echo "ok: nothing mapped, no domain, no table page; $bdf in the default domain"
exit $bad
