// SPDX-License-Identifier: GPL-2.0
/*
 * tph_sim: emulated PCIe endpoints with a TPH Requester capability, so that
 * drivers/pci/tph.c and the drivers that use it can be tested in a VM that
 * has no TPH hardware. Test-only: never loaded outside the test plans.
 *
 * The module creates a PCI domain of its own (like VMD) whose config spaces
 * live in memory: on bus 0 one Root Port per endpoint of tph_sim_descs[],
 * each with its endpoint at device 0 of its secondary bus. The host bridge's
 * ACPI companion is the TPHS0001 device of tph_sim.asl (booted with QEMU
 * -acpitable), whose _DSM answers the processor cache steering tag query
 * (function 0xF) that pcie_tph_get_cpu_st() makes.
 *
 * Endpoints have the TPH capability first in the extended chain, or (chained)
 * between a Device Serial Number and a vendor-specific capability.
 *
 * Emulated: the Command register, Device Control with FLR (resets the
 * endpoint: TPH Control, ST table, Command, BAR, MSI-X), Secondary Bus Reset
 * in the Root Port's Bridge Control (the same for the endpoint behind it),
 * the bus number and memory window registers, TPH Control (mode select,
 * requester enable) and the ST table in the capability. Everything else is
 * read-only.
 *
 * Each endpoint has a 16 KiB memory BAR 0 (VFIO exports dma-bufs of it);
 * the one with MSI-X (its ST table in the MSI-X table) holds the MSI-X table
 * and PBA there. Memory cannot be emulated like config space, so the
 * domain's memory window is carved out of a real BAR that is plain memory:
 * QEMU's ivshmem-plain (the "carrier", BAR 2, below 4 GiB, 1 MiB per Root
 * Port's window), booted with -object memory-backend-ram,id=M,size=8M
 * -device ivshmem-plain,memdev=M. The MSI-X table the kernel programs is
 * then that memory; a reset of the endpoint masks every entry and clears
 * its tag.
 *
 * debugfs, tph_sim/:
 *   <endpoint>/config  the endpoint's raw 4 KiB config space
 *   <endpoint>/bar0    BAR 0 as the device holds it (read; write to preset),
 *                      ENXIO while BAR 0 is not assigned
 *   <endpoint>/bdf     its pci_name()
 *   st_info            write "UID VALUE": the 64-bit _DSM 0xF result for a
 *                      processor UID (the SSDT's SETT); read: the table
 *   dsm                _DSM function 0 and function 0xF for each CPU's UID
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/acpi.h>
#include <linux/bitfield.h>
#include <linux/cpumask.h>
#include <linux/debugfs.h>
#include <linux/io.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/seq_file.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/unaligned.h>

#define TPH_SIM_HID		"TPHS0001"
#define TPH_SIM_EXP		0x40	/* PCIe capability */
#define TPH_SIM_MSIX		0x80	/* MSI-X capability, after the PCIe one */
#define TPH_SIM_TPH		0x100	/* TPH Requester extended capability */
#define TPH_SIM_TPH_CHAINED	0x110	/* the same, after a Device Serial Number */
#define TPH_SIM_VSEC		0x140	/* and before a vendor-specific one */
#define TPH_SIM_BAR_SIZE	SZ_16K	/* BAR 0: MSI-X table at 0, and the PBA */
#define TPH_SIM_PBA		0x1000
#define TPH_SIM_CARRIER_ID	0x1110	/* ivshmem, PCI_VENDOR_ID_REDHAT_QUMRANET */
#define TPH_SIM_CARRIER_BAR	2
#define TPH_SIM_EP_ID		0x7400	/* + endpoint number */
#define TPH_SIM_RP_ID		0x7480	/* + endpoint number */
#define TPH_SIM_CFG_SIZE	PCI_CFG_SPACE_EXP_SIZE
#define TPH_SIM_CMD_MASK	(PCI_COMMAND_IO | PCI_COMMAND_MEMORY | \
				 PCI_COMMAND_MASTER | PCI_COMMAND_PARITY | \
				 PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE)
#define TPH_SIM_ALL_MODES	(PCI_TPH_CAP_ST_NS | PCI_TPH_CAP_ST_IV | \
				 PCI_TPH_CAP_ST_DS)

struct tph_sim_desc {
	const char *name;
	u32 modes;		/* PCI_TPH_CAP_ST_*; 0: no TPH capability */
	bool ext;		/* Extended TPH Requester supported */
	u32 loc;		/* PCI_TPH_LOC_* */
	u16 entries;		/* ST table entries, with PCI_TPH_LOC_CAP */
	u8 rp_completer;	/* Root Port DEVCAP2 TPH Completer Supported */
	u8 ep_completer;	/* the endpoint's own */
	bool msix;		/* BAR 0 with an MSI-X table of @entries vectors */
	bool chained;		/* TPH between two other extended capabilities */
};

static const struct tph_sim_desc tph_sim_descs[] = {
	/* name, modes, ext, loc, entries, rp_completer, ep_completer, msix */
	{ "cap16", TPH_SIM_ALL_MODES, true, PCI_TPH_LOC_CAP, 16, 3, 3 },
	{ "ds_only", PCI_TPH_CAP_ST_DS, false, PCI_TPH_LOC_NONE, 0, 1, 1 },
	{ "ext_limited", TPH_SIM_ALL_MODES, true, PCI_TPH_LOC_CAP, 8, 1, 1 },
	{ "no_tph", 0, false, PCI_TPH_LOC_NONE, 0, 3, 0 },
	{ "no_completer", TPH_SIM_ALL_MODES, true, PCI_TPH_LOC_CAP, 16, 0, 0 },
	{ "msix", TPH_SIM_ALL_MODES, true, PCI_TPH_LOC_MSIX, 16, 3, 3, true },
	{ "chained", TPH_SIM_ALL_MODES, true, PCI_TPH_LOC_CAP, 16, 3, 3, false, true },
	{ "chained_hidden", TPH_SIM_ALL_MODES, true, PCI_TPH_LOC_CAP, 16, 0, 0, false, true },
};

#define TPH_SIM_PORTS ARRAY_SIZE(tph_sim_descs)

struct tph_sim_fn {
	u8 cfg[TPH_SIM_CFG_SIZE];
	u8 wmask[TPH_SIM_CFG_SIZE];	/* the writable bits of cfg */
};

struct tph_sim_port {
	const struct tph_sim_desc *desc;
	unsigned int nr;
	struct tph_sim_fn rp;
	struct tph_sim_fn ep;
	char bdf[24];
	struct debugfs_blob_wrapper bdf_blob;
};

/* PCI function UUID, PCI Firmware Spec (pci_acpi_dsm_guid, not exported) */
static const guid_t tph_sim_dsm_guid =
	GUID_INIT(0xe5c937d0, 0x3553, 0x4d7a,
		  0x91, 0x17, 0xea, 0x4d, 0x19, 0xc3, 0x43, 0x4d);

/* Config accesses come under the PCI core's raw pci_lock. */
static DEFINE_RAW_SPINLOCK(tph_sim_lock);
static struct tph_sim_port *tph_sim_ports;
static struct pci_sysdata tph_sim_sd;
static struct pci_host_bridge *tph_sim_bridge;
static struct acpi_device *tph_sim_adev;
static struct dentry *tph_sim_dir;
/* The carrier, and the domain's memory window: all of its BAR, mapped. */
static struct pci_dev *tph_sim_carrier;
static void __iomem *tph_sim_mmio;
static struct resource tph_sim_mem = {
	.name = "tph_sim",
	.flags = IORESOURCE_MEM,
};

static struct resource tph_sim_busn = {
	.name = "tph_sim",
	.start = 0,
	.end = 0xff,
	.flags = IORESOURCE_BUS,
};

static void tph_sim_set(struct tph_sim_fn *fn, unsigned int off,
			unsigned int size, u32 val, u32 wmask)
{
	unsigned int i;

	for (i = 0; i < size; i++) {
		fn->cfg[off + i] = val >> (8 * i);
		fn->wmask[off + i] = wmask >> (8 * i);
	}
}

/* Header and PCIe capability (version 2, 2.5 GT/s x1) of either type. */
static void tph_sim_build_common(struct tph_sim_fn *fn, u16 device, u32 class,
				 u8 type, u32 devcap, u8 completer, u8 port)
{
	bool rp = type == PCI_EXP_TYPE_ROOT_PORT;
	unsigned int exp = TPH_SIM_EXP;

	memset(fn, 0, sizeof(*fn));
	tph_sim_set(fn, PCI_VENDOR_ID, 2, PCI_VENDOR_ID_REDHAT, 0);
	tph_sim_set(fn, PCI_DEVICE_ID, 2, device, 0);
	tph_sim_set(fn, PCI_COMMAND, 2, 0, TPH_SIM_CMD_MASK);
	tph_sim_set(fn, PCI_STATUS, 2, PCI_STATUS_CAP_LIST, 0);
	tph_sim_set(fn, PCI_CLASS_REVISION, 4, class << 8 | 1, 0);
	tph_sim_set(fn, PCI_CACHE_LINE_SIZE, 1, 0, 0xff);
	tph_sim_set(fn, PCI_HEADER_TYPE, 1,
		    rp ? PCI_HEADER_TYPE_BRIDGE : PCI_HEADER_TYPE_NORMAL, 0);
	tph_sim_set(fn, PCI_CAPABILITY_LIST, 1, exp, 0);
	tph_sim_set(fn, PCI_INTERRUPT_LINE, 1, 0, 0xff);

	tph_sim_set(fn, exp + PCI_CAP_LIST_ID, 2, PCI_CAP_ID_EXP, 0);
	tph_sim_set(fn, exp + PCI_EXP_FLAGS, 2,
		    FIELD_PREP(PCI_EXP_FLAGS_TYPE, type) | 2, 0);
	/* Role-Based Error Reporting: PCIe 1.1 or later (for ASPM) */
	tph_sim_set(fn, exp + PCI_EXP_DEVCAP, 4, devcap | PCI_EXP_DEVCAP_RBER, 0);
	tph_sim_set(fn, exp + PCI_EXP_DEVCTL, 2, 0,
		    rp ? 0x7fff : 0xffff);
	tph_sim_set(fn, exp + PCI_EXP_LNKCAP, 4,
		    PCI_EXP_LNKCAP_SLS_2_5GB | FIELD_PREP(PCI_EXP_LNKCAP_MLW, 1) |
		    FIELD_PREP(PCI_EXP_LNKCAP_PN, port), 0);
	tph_sim_set(fn, exp + PCI_EXP_LNKCTL, 2, 0,
		    0xffff & ~(PCI_EXP_LNKCTL_LD | PCI_EXP_LNKCTL_RL));
	tph_sim_set(fn, exp + PCI_EXP_LNKSTA, 2,
		    PCI_EXP_LNKSTA_CLS_2_5GB | FIELD_PREP(PCI_EXP_LNKSTA_NLW, 1), 0);
	if (rp)
		tph_sim_set(fn, exp + PCI_EXP_RTCTL, 2, 0, 0x1f);
	tph_sim_set(fn, exp + PCI_EXP_DEVCAP2, 4,
		    FIELD_PREP(PCI_EXP_DEVCAP2_TPH_COMP_MASK, completer), 0);
	tph_sim_set(fn, exp + PCI_EXP_DEVCTL2, 2, 0,
		    PCI_EXP_DEVCTL2_COMP_TIMEOUT | PCI_EXP_DEVCTL2_COMP_TMOUT_DIS);
	tph_sim_set(fn, exp + PCI_EXP_LNKCAP2, 4, PCI_EXP_LNKCAP2_SLS_2_5GB, 0);
}

static void tph_sim_build_rp(struct tph_sim_port *p)
{
	struct tph_sim_fn *fn = &p->rp;

	tph_sim_build_common(fn, TPH_SIM_RP_ID + p->nr, PCI_CLASS_BRIDGE_PCI_NORMAL,
			     PCI_EXP_TYPE_ROOT_PORT, 0, p->desc->rp_completer,
			     p->nr + 1);
	/* Bus numbers; a memory window (disabled); no I/O, no prefetchable. */
	tph_sim_set(fn, PCI_PRIMARY_BUS, 4, 0, 0xffffffff);
	tph_sim_set(fn, PCI_MEMORY_BASE, 2, 0xfff0, 0xfff0);
	tph_sim_set(fn, PCI_MEMORY_LIMIT, 2, 0, 0xfff0);
	tph_sim_set(fn, PCI_BRIDGE_CONTROL, 2, 0, 0xff);
}

static unsigned int tph_sim_tph_pos(const struct tph_sim_desc *d)
{
	return d->chained ? TPH_SIM_TPH_CHAINED : TPH_SIM_TPH;
}

/* Also the endpoint's reset: FLR or Secondary Bus Reset. */
static void tph_sim_build_ep(struct tph_sim_port *p)
{
	const struct tph_sim_desc *d = p->desc;
	struct tph_sim_fn *fn = &p->ep;
	unsigned int i, tph = tph_sim_tph_pos(d);
	u32 cap;

	tph_sim_build_common(fn, TPH_SIM_EP_ID + p->nr, PCI_CLASS_OTHERS << 16,
			     PCI_EXP_TYPE_ENDPOINT, PCI_EXP_DEVCAP_FLR,
			     d->ep_completer, 0);
	tph_sim_set(fn, PCI_SUBSYSTEM_VENDOR_ID, 2, PCI_VENDOR_ID_REDHAT, 0);
	tph_sim_set(fn, PCI_SUBSYSTEM_ID, 2, TPH_SIM_EP_ID + p->nr, 0);
	/* BAR 0, 32-bit memory; with MSI-X, that after the PCIe capability. */
	tph_sim_set(fn, PCI_BASE_ADDRESS_0, 4, 0, ~(TPH_SIM_BAR_SIZE - 1));
	if (d->msix) {
		fn->cfg[TPH_SIM_EXP + PCI_CAP_LIST_NEXT] = TPH_SIM_MSIX;
		tph_sim_set(fn, TPH_SIM_MSIX + PCI_CAP_LIST_ID, 2, PCI_CAP_ID_MSIX, 0);
		tph_sim_set(fn, TPH_SIM_MSIX + PCI_MSIX_FLAGS, 2, d->entries - 1,
			    PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
		tph_sim_set(fn, TPH_SIM_MSIX + PCI_MSIX_TABLE, 4, 0, 0);
		tph_sim_set(fn, TPH_SIM_MSIX + PCI_MSIX_PBA, 4, TPH_SIM_PBA, 0);
	}
	if (!d->modes)
		return;

	/* With the table in MSI-X, the size is the MSI-X table's. */
	cap = d->modes | d->loc | (d->ext ? PCI_TPH_CAP_EXT_TPH : 0);
	if (d->loc != PCI_TPH_LOC_NONE)
		cap |= FIELD_PREP(PCI_TPH_CAP_ST_MASK, d->entries - 1);
	/* Version 1, the last extended capability. */
	if (d->chained) {
		/* Version 1 each: DSN -> TPH -> a 16-byte vendor-specific. */
		tph_sim_set(fn, PCI_CFG_SPACE_SIZE, 4, PCI_EXT_CAP_ID_DSN | 1 << 16 |
			    TPH_SIM_TPH_CHAINED << 20, 0);
		tph_sim_set(fn, PCI_CFG_SPACE_SIZE + 4, 4, 0x12345678, 0);
		tph_sim_set(fn, PCI_CFG_SPACE_SIZE + 8, 4, 0x9abcdef0, 0);
		tph_sim_set(fn, TPH_SIM_VSEC, 4, PCI_EXT_CAP_ID_VNDR | 1 << 16, 0);
		tph_sim_set(fn, TPH_SIM_VSEC + PCI_VNDR_HEADER, 4,
			    0x10 << 20 | 1 << 16 | (TPH_SIM_EP_ID + p->nr), 0);
	}
	tph_sim_set(fn, tph, 4, PCI_EXT_CAP_ID_TPH | 1 << 16 |
		    (d->chained ? TPH_SIM_VSEC << 20 : 0), 0);
	tph_sim_set(fn, tph + PCI_TPH_CAP, 4, cap, 0);
	tph_sim_set(fn, tph + PCI_TPH_CTRL, 4, 0,
		    PCI_TPH_CTRL_MODE_SEL_MASK | PCI_TPH_CTRL_REQ_EN_MASK);
	for (i = 0; d->loc == PCI_TPH_LOC_CAP && i < d->entries; i++)
		tph_sim_set(fn, tph + PCI_TPH_BASE_SIZEOF + 2 * i, 2,
			    0, 0xffff);
}

/* BAR 0 at bus address @bar, if it lies in the carrier; bus == CPU address. */
static void __iomem *tph_sim_bar(u32 bar)
{
	if (!tph_sim_mmio || !bar || bar < tph_sim_mem.start ||
	    bar > tph_sim_mem.end + 1 - TPH_SIM_BAR_SIZE)
		return NULL;
	return tph_sim_mmio + (bar - tph_sim_mem.start);
}

static u32 tph_sim_bar0(struct tph_sim_fn *fn)
{
	return get_unaligned_le32(&fn->cfg[PCI_BASE_ADDRESS_0]) &
	       PCI_BASE_ADDRESS_MEM_MASK;
}

/* MSI-X at power up: every entry masked with tag 0, nothing pending. */
static void tph_sim_msix_reset(struct tph_sim_port *p, void __iomem *t)
{
	unsigned int i;

	if (!p->desc->msix || !t)
		return;
	for (i = 0; i < p->desc->entries; i++) {
		void __iomem *e = t + i * PCI_MSIX_ENTRY_SIZE;

		writel(0, e + PCI_MSIX_ENTRY_LOWER_ADDR);
		writel(0, e + PCI_MSIX_ENTRY_UPPER_ADDR);
		writel(0, e + PCI_MSIX_ENTRY_DATA);
		writel(PCI_MSIX_ENTRY_CTRL_MASKBIT, e + PCI_MSIX_ENTRY_VECTOR_CTRL);
	}
	memset_io(t + TPH_SIM_PBA, 0, DIV_ROUND_UP(p->desc->entries, 64) * 8);
}

/* FLR or Secondary Bus Reset, with MSI-X in the BAR 0 decoded before it. */
static void tph_sim_reset_ep(struct tph_sim_port *p)
{
	void __iomem *t = tph_sim_bar(tph_sim_bar0(&p->ep));

	tph_sim_build_ep(p);
	tph_sim_msix_reset(p, t);
}

/* Root Ports on the root bus; an endpoint at device 0 of each secondary. */
static struct tph_sim_fn *tph_sim_find(struct pci_bus *bus, unsigned int devfn,
				       struct tph_sim_port **port)
{
	unsigned int i;

	lockdep_assert_held(&tph_sim_lock);
	if (pci_is_root_bus(bus)) {
		if (PCI_FUNC(devfn) || PCI_SLOT(devfn) >= TPH_SIM_PORTS)
			return NULL;
		*port = &tph_sim_ports[PCI_SLOT(devfn)];
		return &(*port)->rp;
	}
	if (devfn)
		return NULL;
	for (i = 0; i < TPH_SIM_PORTS; i++) {
		u8 sec = tph_sim_ports[i].rp.cfg[PCI_SECONDARY_BUS];

		if (sec && sec == bus->number) {
			*port = &tph_sim_ports[i];
			return &(*port)->ep;
		}
	}
	return NULL;
}

static int tph_sim_access(struct pci_bus *bus, unsigned int devfn, int where,
			  int size, u32 *val, bool write)
{
	struct tph_sim_port *port;
	struct tph_sim_fn *fn;
	unsigned long flags;
	int i, ret = PCIBIOS_SUCCESSFUL;
	u8 bctl;
	u32 v;

	raw_spin_lock_irqsave(&tph_sim_lock, flags);
	fn = tph_sim_find(bus, devfn, &port);
	if (!fn) {
		ret = PCIBIOS_DEVICE_NOT_FOUND;
	} else if (where < 0 || where + size > TPH_SIM_CFG_SIZE) {
		ret = PCIBIOS_BAD_REGISTER_NUMBER;
	} else if (!write) {
		for (v = 0, i = size - 1; i >= 0; i--)
			v = v << 8 | fn->cfg[where + i];
		*val = v;
	} else {
		bctl = port->rp.cfg[PCI_BRIDGE_CONTROL];
		for (i = 0; i < size; i++) {
			u8 m = fn->wmask[where + i], b = *val >> (8 * i);

			fn->cfg[where + i] = (fn->cfg[where + i] & ~m) | (b & m);
		}
		if (fn == &port->ep &&
		    get_unaligned_le16(&fn->cfg[TPH_SIM_EXP + PCI_EXP_DEVCTL]) &
		    PCI_EXP_DEVCTL_BCR_FLR)
			tph_sim_reset_ep(port);
		else if (fn == &port->rp &&
			 fn->cfg[PCI_BRIDGE_CONTROL] & ~bctl & PCI_BRIDGE_CTL_BUS_RESET)
			tph_sim_reset_ep(port);
	}
	raw_spin_unlock_irqrestore(&tph_sim_lock, flags);

	if (ret && !write)
		PCI_SET_ERROR_RESPONSE(val);
	return ret;
}

static int tph_sim_read(struct pci_bus *bus, unsigned int devfn, int where,
			int size, u32 *val)
{
	return tph_sim_access(bus, devfn, where, size, val, false);
}

static int tph_sim_write(struct pci_bus *bus, unsigned int devfn, int where,
			 int size, u32 val)
{
	return tph_sim_access(bus, devfn, where, size, &val, true);
}

static struct pci_ops tph_sim_ops = {
	.read = tph_sim_read,
	.write = tph_sim_write,
};

static ssize_t tph_sim_config_read(struct file *file, char __user *ubuf,
				   size_t count, loff_t *ppos)
{
	struct tph_sim_fn *fn = file->private_data;
	unsigned long flags;
	ssize_t ret;
	u8 *buf;

	buf = kmalloc(TPH_SIM_CFG_SIZE, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	raw_spin_lock_irqsave(&tph_sim_lock, flags);
	memcpy(buf, fn->cfg, TPH_SIM_CFG_SIZE);
	raw_spin_unlock_irqrestore(&tph_sim_lock, flags);
	ret = simple_read_from_buffer(ubuf, count, ppos, buf, TPH_SIM_CFG_SIZE);
	kfree(buf);
	return ret;
}

/*
 * Sets ST table entries as if the device held them (a test presets a table
 * before a driver binds, to tell "put back what it found" from "zeroed").
 * Only the table in the capability; the bytes at the file offset.
 */
static ssize_t tph_sim_config_write(struct file *file, const char __user *ubuf,
				    size_t count, loff_t *ppos)
{
	struct tph_sim_fn *fn = file->private_data;
	struct tph_sim_port *p = container_of(fn, struct tph_sim_port, ep);
	unsigned int tph = tph_sim_tph_pos(p->desc);
	u32 cap = get_unaligned_le32(&fn->cfg[tph + PCI_TPH_CAP]);
	unsigned int lo = tph + PCI_TPH_BASE_SIZEOF, hi = lo;
	unsigned long flags;
	u8 buf[64];

	if (FIELD_GET(PCI_TPH_CAP_LOC_MASK, cap) == 1)
		hi += 2 * (FIELD_GET(PCI_TPH_CAP_ST_MASK, cap) + 1);
	if (*ppos < lo || count > sizeof(buf) || *ppos + count > hi)
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	raw_spin_lock_irqsave(&tph_sim_lock, flags);
	memcpy(&fn->cfg[*ppos], buf, count);
	raw_spin_unlock_irqrestore(&tph_sim_lock, flags);
	*ppos += count;
	return count;
}

static const struct file_operations tph_sim_config_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.read = tph_sim_config_read,
	.write = tph_sim_config_write,
	.llseek = default_llseek,
};

/* BAR 0 of an endpoint with MSI-X, where it is now; NULL while unassigned. */
static void __iomem *tph_sim_ep_bar(struct tph_sim_port *p)
{
	unsigned long flags;
	u32 bar;

	raw_spin_lock_irqsave(&tph_sim_lock, flags);
	bar = tph_sim_bar0(&p->ep);
	raw_spin_unlock_irqrestore(&tph_sim_lock, flags);
	return tph_sim_bar(bar);
}

static ssize_t tph_sim_bar_read(struct file *file, char __user *ubuf,
				size_t count, loff_t *ppos)
{
	void __iomem *bar = tph_sim_ep_bar(file->private_data);
	ssize_t ret;
	u8 *buf;

	if (!bar)
		return -ENXIO;
	buf = kmalloc(TPH_SIM_BAR_SIZE, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	memcpy_fromio(buf, bar, TPH_SIM_BAR_SIZE);
	ret = simple_read_from_buffer(ubuf, count, ppos, buf, TPH_SIM_BAR_SIZE);
	kfree(buf);
	return ret;
}

/* Presets BAR 0 bytes at the file offset, as if the device held them. */
static ssize_t tph_sim_bar_write(struct file *file, const char __user *ubuf,
				 size_t count, loff_t *ppos)
{
	void __iomem *bar = tph_sim_ep_bar(file->private_data);
	u8 buf[64];

	if (!bar)
		return -ENXIO;
	if (*ppos < 0 || count > sizeof(buf) || *ppos + count > TPH_SIM_BAR_SIZE)
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	memcpy_toio(bar + *ppos, buf, count);
	*ppos += count;
	return count;
}

static const struct file_operations tph_sim_bar_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.read = tph_sim_bar_read,
	.write = tph_sim_bar_write,
	.llseek = default_llseek,
};

static int tph_sim_st_info_show(struct seq_file *s, void *unused)
{
	struct acpi_buffer out = { ACPI_ALLOCATE_BUFFER, NULL };
	union acpi_object *pkg;
	u32 i;

	if (ACPI_FAILURE(acpi_evaluate_object(tph_sim_adev->handle, "STT",
					      NULL, &out)))
		return -EIO;
	pkg = out.pointer;
	for (i = 0; pkg->type == ACPI_TYPE_PACKAGE && i < pkg->package.count; i++)
		if (pkg->package.elements[i].type == ACPI_TYPE_INTEGER)
			seq_printf(s, "%u 0x%016llx\n", i,
				   pkg->package.elements[i].integer.value);
	ACPI_FREE(out.pointer);
	return 0;
}

/* "UID VALUE": UID decimal, VALUE a u64 (union st_info in tph.c) */
static ssize_t tph_sim_st_info_write(struct file *file, const char __user *ubuf,
				     size_t count, loff_t *ppos)
{
	union acpi_object args[2] = {
		{ .integer.type = ACPI_TYPE_INTEGER },
		{ .integer.type = ACPI_TYPE_INTEGER },
	};
	struct acpi_object_list list = { ARRAY_SIZE(args), args };
	unsigned long long ok;
	char buf[64], *val, *uid;
	u64 st;
	u32 nr;

	if (count >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = '\0';
	val = strim(buf);
	uid = strsep(&val, " \t");
	if (!val || kstrtou32(uid, 10, &nr) || kstrtou64(skip_spaces(val), 0, &st))
		return -EINVAL;
	args[0].integer.value = nr;
	args[1].integer.value = st;
	if (ACPI_FAILURE(acpi_evaluate_integer(tph_sim_adev->handle, "SETT",
					       &list, &ok)))
		return -EIO;
	return ok ? count : -EINVAL;
}

DEFINE_SHOW_STORE_ATTRIBUTE(tph_sim_st_info);

static void tph_sim_show_dsm(struct seq_file *s, union acpi_object *obj)
{
	if (!obj) {
		seq_puts(s, "failed\n");
		return;
	}
	if (obj->type != ACPI_TYPE_BUFFER) {
		seq_printf(s, "type %u\n", obj->type);
	} else {
		seq_printf(s, "buffer len %u: %*phN", obj->buffer.length,
			   min(obj->buffer.length, 16U), obj->buffer.pointer);
		if (obj->buffer.length >= 8)
			seq_printf(s, " value 0x%016llx",
				   get_unaligned_le64(obj->buffer.pointer));
		seq_putc(s, '\n');
	}
	ACPI_FREE(obj);
}

/* What tph.c does: _DSM rev 7, function 0, then 0xF with the CPU's UID. */
static int tph_sim_dsm_show(struct seq_file *s, void *unused)
{
	acpi_handle h = tph_sim_adev->handle;
	union acpi_object in, arg3[3] = {
		{ .integer.type = ACPI_TYPE_INTEGER },
		{ .integer.type = ACPI_TYPE_INTEGER },
		{ .integer.type = ACPI_TYPE_INTEGER },
	};
	unsigned int cpu;
	u32 uid;

	seq_puts(s, "func 0: ");
	tph_sim_show_dsm(s, acpi_evaluate_dsm(h, &tph_sim_dsm_guid, 7, 0, NULL));
	seq_printf(s, "acpi_check_dsm(rev 7, BIT(0xF)): %d\n",
		   acpi_check_dsm(h, &tph_sim_dsm_guid, 7, BIT(0xF)));
	in.type = ACPI_TYPE_PACKAGE;
	in.package.count = ARRAY_SIZE(arg3);
	in.package.elements = arg3;
	for_each_possible_cpu(cpu) {
		if (acpi_get_cpu_uid(cpu, &uid)) {
			seq_printf(s, "cpu %u: no ACPI processor UID\n", cpu);
			continue;
		}
		arg3[1].integer.value = uid;
		seq_printf(s, "func 0xf cpu %u uid %u: ", cpu, uid);
		tph_sim_show_dsm(s, acpi_evaluate_dsm(h, &tph_sim_dsm_guid, 7,
						      0xf, &in));
	}
	return 0;
}

DEFINE_SHOW_ATTRIBUTE(tph_sim_dsm);

static void tph_sim_debugfs_init(void)
{
	struct dentry *dir;
	unsigned int i;

	tph_sim_dir = debugfs_create_dir(KBUILD_MODNAME, NULL);
	for (i = 0; i < TPH_SIM_PORTS; i++) {
		struct tph_sim_port *p = &tph_sim_ports[i];

		dir = debugfs_create_dir(p->desc->name, tph_sim_dir);
		debugfs_create_file_size("config", 0644, dir, &p->ep,
					 &tph_sim_config_fops, TPH_SIM_CFG_SIZE);
		debugfs_create_file_size("bar0", 0644, dir, p, &tph_sim_bar_fops,
					 TPH_SIM_BAR_SIZE);
		p->bdf_blob.data = p->bdf;
		p->bdf_blob.size = strlen(p->bdf);
		debugfs_create_blob("bdf", 0444, dir, &p->bdf_blob);
	}
	debugfs_create_file("st_info", 0644, tph_sim_dir, NULL,
			    &tph_sim_st_info_fops);
	debugfs_create_file("dsm", 0444, tph_sim_dir, NULL, &tph_sim_dsm_fops);
}

/* Records each endpoint's name; fails if one is missing. */
static int tph_sim_name_eps(struct pci_bus *root)
{
	unsigned int i;

	for (i = 0; i < TPH_SIM_PORTS; i++) {
		struct tph_sim_port *p = &tph_sim_ports[i];
		struct pci_dev *rp, *ep = NULL;

		rp = pci_get_slot(root, PCI_DEVFN(i, 0));
		if (rp && rp->subordinate)
			ep = pci_get_slot(rp->subordinate, 0);
		if (ep)
			snprintf(p->bdf, sizeof(p->bdf), "%s\n", pci_name(ep));
		if (ep && !ep->resource[0].parent) {
			pci_err(ep, "BAR 0 is not assigned in the carrier\n");
			pci_dev_put(ep);
			ep = NULL;
		}
		pci_dev_put(ep);
		pci_dev_put(rp);
		if (!ep) {
			pr_err("endpoint %s was not found\n", p->desc->name);
			return -ENODEV;
		}
	}
	return 0;
}

static void tph_sim_remove_bus(void)
{
	pci_lock_rescan_remove();
	pci_stop_root_bus(tph_sim_bridge->bus);
	pci_remove_root_bus(tph_sim_bridge->bus);
	pci_unlock_rescan_remove();
	pci_free_host_bridge(tph_sim_bridge);
}

static int tph_sim_create_bus(void)
{
	struct pci_host_bridge *bridge;
	int ret;

	bridge = pci_alloc_host_bridge(0);
	if (!bridge)
		return -ENOMEM;
	/* With no parent, x86 takes the ACPI companion from the sysdata. */
	bridge->sysdata = &tph_sim_sd;
	bridge->ops = &tph_sim_ops;
	/* No port services: portdrv then only enables the Root Ports. */
	bridge->native_aer = 0;
	bridge->native_pcie_hotplug = 0;
	bridge->native_shpc_hotplug = 0;
	bridge->native_pme = 0;
	bridge->native_ltr = 0;
	bridge->native_dpc = 0;
	bridge->native_cxl_error = 0;
	pci_add_resource(&bridge->windows, &tph_sim_busn);
	pci_add_resource(&bridge->windows, &tph_sim_mem);

	pci_lock_rescan_remove();
	ret = pci_scan_root_bus_bridge(bridge);
	if (!ret) {
		pci_assign_unassigned_bus_resources(bridge->bus);
		pci_bus_add_devices(bridge->bus);
	}
	pci_unlock_rescan_remove();
	if (ret) {
		pci_free_host_bridge(bridge);
		return ret;
	}
	tph_sim_bridge = bridge;

	ret = tph_sim_name_eps(bridge->bus);
	if (ret)
		tph_sim_remove_bus();
	return ret;
}

/*
 * Takes the carrier's BAR as the domain's memory window (a child of that
 * BAR in the resource tree, like VMD's), mapped and zeroed.
 */
static int tph_sim_carrier_init(void)
{
	struct pci_dev *pdev;
	struct resource *bar;
	int ret;

	pdev = pci_get_device(PCI_VENDOR_ID_REDHAT_QUMRANET, TPH_SIM_CARRIER_ID, NULL);
	if (!pdev) {
		pr_err("no ivshmem-plain: boot with QEMU -object memory-backend-ram,id=M,size=8M -device ivshmem-plain,memdev=M\n");
		return -ENODEV;
	}
	bar = &pdev->resource[TPH_SIM_CARRIER_BAR];
	/*
	 * A 32-bit window (the Root Ports forward non-prefetchable memory
	 * only) holding each Root Port's: bridge windows are 1 MiB-aligned.
	 */
	if (resource_type(bar) != IORESOURCE_MEM || !bar->start ||
	    upper_32_bits(bar->end) || resource_size(bar) < TPH_SIM_PORTS * SZ_1M) {
		pci_err(pdev, "BAR %d %pR: not memory below 4 GiB of %zu MiB or more\n",
			TPH_SIM_CARRIER_BAR, bar, TPH_SIM_PORTS);
		ret = -ENODEV;
		goto err_put;
	}
	ret = pci_enable_device_mem(pdev);
	if (ret)
		goto err_put;
	tph_sim_mem.start = bar->start;
	tph_sim_mem.end = bar->end;
	ret = request_resource(bar, &tph_sim_mem);
	if (ret) {
		pci_err(pdev, "BAR %d %pR is in use\n", TPH_SIM_CARRIER_BAR, bar);
		goto err_disable;
	}
	tph_sim_mmio = ioremap(bar->start, resource_size(bar));
	if (!tph_sim_mmio) {
		ret = -ENOMEM;
		goto err_release;
	}
	memset_io(tph_sim_mmio, 0, resource_size(bar));
	tph_sim_carrier = pdev;
	pci_info(pdev, "carries tph_sim's memory window %pR\n", &tph_sim_mem);
	return 0;

err_release:
	release_resource(&tph_sim_mem);
err_disable:
	pci_disable_device(pdev);
err_put:
	pci_dev_put(pdev);
	return ret;
}

static void tph_sim_carrier_exit(void)
{
	iounmap(tph_sim_mmio);
	tph_sim_mmio = NULL;
	release_resource(&tph_sim_mem);
	pci_disable_device(tph_sim_carrier);
	pci_dev_put(tph_sim_carrier);
}

static int __init tph_sim_init(void)
{
	unsigned int i, cpu;
	u32 uid;
	int ret;

	tph_sim_adev = acpi_dev_get_first_match_dev(TPH_SIM_HID, NULL, -1);
	if (!tph_sim_adev) {
		pr_err("no ACPI device %s: boot with QEMU -acpitable file=tph_sim.aml\n",
		       TPH_SIM_HID);
		return -ENODEV;
	}
	for_each_possible_cpu(cpu) {
		if (acpi_get_cpu_uid(cpu, &uid))
			pr_info("cpu %u: no ACPI processor UID\n", cpu);
		else
			pr_info("cpu %u: ACPI processor UID %u\n", cpu, uid);
	}

	tph_sim_ports = kvcalloc(TPH_SIM_PORTS, sizeof(*tph_sim_ports),
				 GFP_KERNEL);
	if (!tph_sim_ports) {
		ret = -ENOMEM;
		goto err_adev;
	}
	for (i = 0; i < TPH_SIM_PORTS; i++) {
		tph_sim_ports[i].desc = &tph_sim_descs[i];
		tph_sim_ports[i].nr = i;
		tph_sim_build_rp(&tph_sim_ports[i]);
		tph_sim_build_ep(&tph_sim_ports[i]);
	}

	ret = tph_sim_carrier_init();
	if (ret)
		goto err_ports;
	/* Emulated domains start above the 16-bit ACPI segments. */
	ret = pci_bus_find_emul_domain_nr(0, 0x10000, INT_MAX);
	if (ret < 0)
		goto err_carrier;
	tph_sim_sd.domain = ret;
	tph_sim_sd.node = NUMA_NO_NODE;
	tph_sim_sd.companion = tph_sim_adev;

	ret = tph_sim_create_bus();
	if (ret)
		goto err_domain;
	for (i = 0; i < TPH_SIM_PORTS; i++)
		tph_sim_msix_reset(&tph_sim_ports[i],
				   tph_sim_ep_bar(&tph_sim_ports[i]));
	tph_sim_debugfs_init();
	pr_info("domain %04x: %zu Root Ports, each with an endpoint\n",
		tph_sim_sd.domain, TPH_SIM_PORTS);
	return 0;

err_domain:
	pci_bus_release_emul_domain_nr(tph_sim_sd.domain);
err_carrier:
	tph_sim_carrier_exit();
err_ports:
	kvfree(tph_sim_ports);
err_adev:
	acpi_dev_put(tph_sim_adev);
	return ret;
}

static void __exit tph_sim_exit(void)
{
	debugfs_remove_recursive(tph_sim_dir);
	tph_sim_remove_bus();
	pci_bus_release_emul_domain_nr(tph_sim_sd.domain);
	tph_sim_carrier_exit();
	kvfree(tph_sim_ports);
	acpi_dev_put(tph_sim_adev);
}

module_init(tph_sim_init);
module_exit(tph_sim_exit);

MODULE_DESCRIPTION("Test-only emulated PCIe endpoints with TPH Requester capabilities");
MODULE_LICENSE("GPL");
