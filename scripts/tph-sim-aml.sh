#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Compiles the SSDT of the test-only tph_sim module
# (tools/testing/selftests/mshv-passthru/tph-sim/tph_sim.asl) with iasl
# (Debian: acpica-tools) into OUT_DIR/tph_sim.aml and prints that path. The
# VM then boots with it: MSHV_QEMU_OPTS="... -acpitable file=OUT_DIR/tph_sim.aml".
#
#   scripts/tph-sim-aml.sh OUT_DIR

source "$(dirname "$0")/lib.sh"

out=${1:?usage: tph-sim-aml.sh OUT_DIR}
asl=$TOP/tools/testing/selftests/mshv-passthru/tph-sim/tph_sim.asl
command -v iasl >/dev/null || die "iasl not found (apt-get install acpica-tools)"
mkdir -p "$out"
# -we: a warning fails the build too.
if ! iasl -we -p "$out/tph_sim" "$asl" >"$out/tph_sim.iasl.log" 2>&1; then
	cat "$out/tph_sim.iasl.log" >&2
	die "iasl failed on $asl"
fi
echo "$out/tph_sim.aml"
