#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# In the VM: every upstream VFIO selftest program is installed and starts.
# With no device given (no VFIO_SELFTESTS_BDF) each one must print its usage
# and exit KSFT_SKIP (4); anything else (missing binary, crash, other status)
# fails. This proves only that the binaries exist and start: what they test
# runs later in the plans, against a device (see Documentation/testing.rst).

set -u
dir=${KSFT_DIR:?}/vfio
progs=(vfio_dma_mapping_test vfio_dma_mapping_mmio_test vfio_iommufd_setup_test
	vfio_pci_device_test vfio_pci_device_init_perf_test vfio_pci_driver_test
	vfio_pci_sriov_uapi_test)
bad=0
for p in "${progs[@]}"; do
	if [[ ! -x $dir/$p ]]; then
		echo "missing: $dir/$p"
		bad=1
		continue
	fi
	(unset VFIO_SELFTESTS_BDF; "$dir/$p" >/tmp/vfio-st.out 2>&1)
	rc=$?
	if ((rc == 4)); then
		echo "ok: $p (exit 4 without a device)"
	else
		echo "FAIL: $p exited $rc"; head -5 /tmp/vfio-st.out
		bad=1
	fi
done
exit $bad
