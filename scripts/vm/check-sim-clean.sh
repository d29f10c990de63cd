#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# In the VM, after a VFIO client closed its files: user space maps nothing
# now, so the simulated hypervisor must hold no device domain (hence no
# mapping), no page-table page of the root pool, and the function
# $VFIO_SELFTESTS_BDF must be back in the default (identity) domain.

set -u
source "$(dirname "$0")/pci-lib.sh"
dump=/sys/kernel/debug/mshv_hvcall/dump
bdf=${VFIO_SELFTESTS_BDF:?}
devid=$(pci_devid "$bdf")
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
