/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Test-only SSDT for tph_sim.ko: the ACPI companion of the emulated PCI
 * domain's host bridge, with the PCI firmware _DSM function 0xF (cache
 * locality TPH features, PCI Firmware Spec r3.3) that drivers/pci/tph.c
 * evaluates for pcie_tph_get_cpu_st().
 *
 * Loaded only in test VMs: QEMU -acpitable file=tph_sim.aml
 * (scripts/tph-sim-aml.sh compiles it with iasl).
 */
DefinitionBlock ("", "SSDT", 2, "MSHVPT", "TPHSIM", 0x00000001)
{
    Scope (\_SB)
    {
        Device (TPHS)
        {
            Name (_HID, "TPHS0001")
            Name (_UID, Zero)

            /*
             * The 64-bit _DSM 0xF result (union st_info in tph.c) per
             * processor UID 0..7; zero means no valid tag.
             */
            Name (STT, Package (0x08)
            {
                Zero, Zero, Zero, Zero, Zero, Zero, Zero, Zero
            })

            /* SETT (UID, VALUE): returns One if UID has an entry. */
            Method (SETT, 2, Serialized)
            {
                If (Arg0 < SizeOf (STT))
                {
                    STT [Arg0] = Arg1
                    Return (One)
                }

                Return (Zero)
            }

            Method (_DSM, 4, Serialized)
            {
                If (Arg0 == ToUUID ("e5c937d0-3553-4d7a-9117-ea4d19c3434d"))
                {
                    If (Arg2 == Zero)
                    {
                        If (Arg1 >= 0x07)
                        {
                            /* Functions 0 and 15. */
                            Return (Buffer (0x02) { 0x01, 0x80 })
                        }

                        Return (Buffer (One) { 0x00 })
                    }

                    /* tph.c reads 8 bytes without checking the length. */
                    If (Arg2 == 0x0F)
                    {
                        Local0 = Buffer (0x08) {}
                        CreateQWordField (Local0, Zero, STQW)
                        If (Arg1 >= 0x07)
                        {
                            If (ObjectType (Arg3) == 0x04)
                            {
                                If (SizeOf (Arg3) >= 0x02)
                                {
                                    Local1 = DerefOf (Arg3 [One])
                                    If (Local1 < SizeOf (STT))
                                    {
                                        STQW = DerefOf (STT [Local1])
                                    }
                                }
                            }
                        }

                        Return (Local0)
                    }
                }

                Return (Buffer (One) { 0x00 })
            }
        }
    }
}
