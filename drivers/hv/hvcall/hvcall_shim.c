// SPDX-License-Identifier: GPL-2.0
/*
 * Thin C shim of the mshv_hvcall module: the backend boundary that every
 * module of the project calls (mshv_hvcall.h), and the Hyper-V helpers that
 * the kernel offers only as static inlines or macros. The lines that only
 * run on real Hyper-V are marked "native only"; see
 * Documentation/hv-backend.rst.
 */

#include <linux/atomic.h>
#include <linux/errno.h>
#include <linux/export.h>
#include <linux/gfp.h>
#include <linux/irqflags.h>
#include <linux/mm.h>
#include <linux/pci.h>
#include <linux/percpu.h>
#include <linux/types.h>
#include <linux/bits.h>
#include <linux/printk.h>
#include <kunit/test.h>
#include <kunit/test-bug.h>
#if IS_ENABLED(CONFIG_HYPERV)
#include <asm/mshyperv.h>
#endif

#include "mshv_hvcall.h"

/* CPUID 0x40000003 EDX bit 24; not in the 7.3 headers yet. */
#define MSHV_PT_HV_DEVICE_DOMAIN_AVAILABLE	BIT(24)
/* HV_MAX_CONTIGUOUS_ALLOCATION_PAGES. */
#define MSHV_PT_CONTIG_ORDER			3

/* Page frame numbers are passed to the hypervisor in 4K units. */
static_assert(PAGE_SIZE == 4096);

/* Per-CPU input pages of the simulated backend (NULL when native). */
static void * __percpu *sim_pages;
static mshv_hvcall_sim_t sim_fn;
static void *sim_ctx;
/* The simulated partition is an L1VH (mshv_hvcall.l1vh=1). */
static bool sim_l1vh;
static bool backend_ready;
static atomic64_t pages_out = ATOMIC64_INIT(0);

int mshv_hvcall_native_probe(void)
{
#if IS_ENABLED(CONFIG_HYPERV)
	/* native only */
	if (!hv_is_hyperv_initialized())
		return -ENODEV;
	/*
	 * An L1VH has no device domains (no S2 default domain, spec 1(b) 7),
	 * and nothing of the project issues a device-domain call there
	 * (mshv_hvcall_l1vh()), so HV_DEVICE_DOMAIN_AVAILABLE, which guards
	 * exactly those calls, is not required of it.
	 */
	if (hv_l1vh_partition())
		return 0;
	if (!hv_root_partition())
		return -ENODEV;
	if (!(ms_hyperv.misc_features & MSHV_PT_HV_DEVICE_DOMAIN_AVAILABLE))
		return -EOPNOTSUPP;
	return 0;
#else
	return -ENODEV;
#endif
}

static void free_sim_pages(void)
{
	int cpu;

	if (!sim_pages)
		return;
	for_each_possible_cpu(cpu)
		free_page((unsigned long)*per_cpu_ptr(sim_pages, cpu));
	free_percpu(sim_pages);
	sim_pages = NULL;
}

int mshv_hvcall_setup(mshv_hvcall_sim_t sim, void *ctx, bool l1vh)
{
	int cpu;

	if (sim) {
		sim_pages = alloc_percpu(void *);
		if (!sim_pages)
			return -ENOMEM;
		for_each_possible_cpu(cpu) {
			void *p = (void *)__get_free_page(GFP_KERNEL | __GFP_ZERO);

			if (!p) {
				free_sim_pages();
				return -ENOMEM;
			}
			*per_cpu_ptr(sim_pages, cpu) = p;
		}
		sim_ctx = ctx;
		sim_fn = sim;
		sim_l1vh = l1vh;
	}
	/* Publish after the pages and the simulator are in place. */
	smp_store_release(&backend_ready, true);
	return 0;
}

void mshv_hvcall_teardown(void)
{
	WRITE_ONCE(backend_ready, false);
	sim_fn = NULL;
	sim_ctx = NULL;
	free_sim_pages();
}

u64 mshv_hvcall_call(u64 control, mshv_hvcall_fill_t fill, void *arg)
{
	unsigned long flags;
	void *page;
	u64 ret = U64_MAX;

	/* Pairs with mshv_hvcall_setup(): the pages and simulator are set. */
	if (!smp_load_acquire(&backend_ready))
		return U64_MAX;

	local_irq_save(flags);
	if (sim_fn) {
		page = *this_cpu_ptr(sim_pages);
		fill(page, arg);
		ret = sim_fn(sim_ctx, control, page);
	} else {
#if IS_ENABLED(CONFIG_HYPERV)
		/* native only */
		page = *this_cpu_ptr(hyperv_pcpu_input_arg);
		if (page) {
			fill(page, arg);
			ret = hv_do_hypercall(control, page, NULL);
		}
#endif
	}
	local_irq_restore(flags);
	return ret;
}
EXPORT_SYMBOL_GPL(mshv_hvcall_call);

void mshv_hvcall_free_pfns(const u64 *pfns, u32 count)
{
	u32 i;

	for (i = 0; i < count; i++)
		__free_page(pfn_to_page(pfns[i]));
	atomic64_sub(count, &pages_out);
}
EXPORT_SYMBOL_GPL(mshv_hvcall_free_pfns);

int mshv_hvcall_alloc_pfns(u64 *pfns, u32 count, bool contiguous, bool atomic)
{
	gfp_t gfp = atomic ? GFP_ATOMIC | __GFP_NOWARN : GFP_KERNEL;
	unsigned int order = contiguous ? MSHV_PT_CONTIG_ORDER : 0;
	u32 step = 1U << order;
	u32 done, j;

	if (count % step)
		return -EINVAL;
	for (done = 0; done < count; done += step) {
		struct page *page = alloc_pages(gfp, order);

		if (!page) {
			mshv_hvcall_free_pfns(pfns, done);
			return -ENOMEM;
		}
		if (order)
			split_page(page, order);
		for (j = 0; j < step; j++)
			pfns[done + j] = page_to_pfn(page) + j;
		atomic64_add(step, &pages_out);
	}
	return 0;
}
EXPORT_SYMBOL_GPL(mshv_hvcall_alloc_pfns);

s64 mshv_hvcall_pages_out(void)
{
	return atomic64_read(&pages_out);
}
EXPORT_SYMBOL_GPL(mshv_hvcall_pages_out);

bool mshv_hvcall_l1vh(void)
{
	/* Pairs with mshv_hvcall_setup(): sim_fn and sim_l1vh are set. */
	if (!smp_load_acquire(&backend_ready))
		return false;
	if (sim_fn)
		return sim_l1vh;
#if IS_ENABLED(CONFIG_HYPERV)
	/* native only */
	return hv_l1vh_partition();
#else
	return false;
#endif
}
EXPORT_SYMBOL_GPL(mshv_hvcall_l1vh);

void *mshv_hvcall_sim_ctx(void)
{
	/* Pairs with mshv_hvcall_setup(): sim_ctx is set when ready. */
	return smp_load_acquire(&backend_ready) ? sim_ctx : NULL;
}
EXPORT_SYMBOL_GPL(mshv_hvcall_sim_ctx);

struct mshv_hvcall_alias {
	struct pci_dev *bridge;
	u16 rid;
};

/* As hv_build_devid_type_pci(): the last alias on another bus wins. */
static int mshv_hvcall_alias_cb(struct pci_dev *pdev, u16 alias, void *data)
{
	struct mshv_hvcall_alias *a = data;
	u8 bus = PCI_BUS_NUM(a->rid);

	if (pdev->bus->number != bus || PCI_BUS_NUM(alias) != bus) {
		a->bridge = pdev;
		a->rid = alias;
	}
	return 0;
}

/*
 * pci_for_each_dma_alias() is not exported to modules in 7.3 (it is absent
 * from Module.symvers; the in-tree IOMMU drivers are built in). This is its
 * walk (drivers/pci/search.c) without pci_real_dma_dev() (only VMD
 * overrides it; not exported either). 256 devfns on a bus (MAX_NR_DEVFNS).
 * It stays in C: it reads struct pci_dev and bridge config space, for which
 * 7.3 has no Rust abstraction.
 */
typedef int (*mshv_hvcall_alias_fn)(struct pci_dev *pdev, u16 alias, void *data);

static void mshv_hvcall_walk_dma_aliases(struct pci_dev *pdev,
					 mshv_hvcall_alias_fn fn, void *data)
{
	struct pci_bus *bus;

	fn(pdev, pci_dev_id(pdev), data);
	if (unlikely(pdev->dma_alias_mask)) {
		unsigned int devfn;

		for_each_set_bit(devfn, pdev->dma_alias_mask, 256)
			fn(pdev, PCI_DEVID(pdev->bus->number, devfn), data);
	}
	for (bus = pdev->bus; !pci_is_root_bus(bus); bus = bus->parent) {
		struct pci_dev *tmp = bus->self;

		if (!tmp)
			continue;
		if (tmp->dev_flags & PCI_DEV_FLAGS_BRIDGE_XLATE_ROOT)
			return;
		if (pci_is_pcie(tmp)) {
			switch (pci_pcie_type(tmp)) {
			case PCI_EXP_TYPE_ROOT_PORT:
			case PCI_EXP_TYPE_UPSTREAM:
			case PCI_EXP_TYPE_DOWNSTREAM:
				continue;
			case PCI_EXP_TYPE_PCI_BRIDGE:
				if (tmp->dev_flags & PCI_DEV_FLAGS_PCI_BRIDGE_NO_ALIAS)
					continue;
				fn(tmp, PCI_DEVID(tmp->subordinate->number,
						  PCI_DEVFN(0, 0)), data);
				continue;
			case PCI_EXP_TYPE_PCIE_BRIDGE:
				fn(tmp, pci_dev_id(tmp), data);
				continue;
			}
		} else if (tmp->dev_flags & PCI_DEV_FLAG_PCIE_BRIDGE_ALIAS) {
			fn(tmp, PCI_DEVID(tmp->subordinate->number,
					  PCI_DEVFN(0, 0)), data);
		} else {
			fn(tmp, pci_dev_id(tmp), data);
		}
	}
}

u64 mshv_hvcall_pci_devid(struct pci_dev *pdev)
{
	u16 rid = pci_dev_id(pdev);
	struct mshv_hvcall_alias a = { .bridge = NULL, .rid = rid };
	u8 sec = 0, sub = 0;
	bool pcix = false;
	int pos;

	mshv_hvcall_walk_dma_aliases(pdev, mshv_hvcall_alias_cb, &a);
	if (a.bridge) {
		pos = pci_find_capability(a.bridge, PCI_CAP_ID_PCIX);
		if (pos) {
			u16 status;

			pci_read_config_word(a.bridge, pos + PCI_X_BRIDGE_SSTATUS,
					     &status);
			/* Non-zero frequency: the bridge runs in PCI-X mode. */
			if (status & PCI_X_SSTATUS_FREQ) {
				pcix = true;
				pci_read_config_byte(a.bridge, PCI_SECONDARY_BUS,
						     &sec);
				pci_read_config_byte(a.bridge, PCI_SUBORDINATE_BUS,
						     &sub);
			}
		}
	}
	return mshv_hvcall_rs_pci_devid(pci_domain_nr(pdev->bus), rid, !!a.bridge,
				 a.rid, pcix, sec, sub);
}
EXPORT_SYMBOL_GPL(mshv_hvcall_pci_devid);

void mshv_hvcall_kunit_skip(const char *reason)
{
#if IS_ENABLED(CONFIG_KUNIT)
	struct kunit *test = kunit_get_current_test();

	if (test)
		kunit_mark_skipped(test, "%s", reason);
#endif
}
EXPORT_SYMBOL_GPL(mshv_hvcall_kunit_skip);

void mshv_hvcall_list_pci_ids(mshv_hvcall_id_cb_t cb, void *ctx)
{
	struct pci_dev *pdev = NULL;

	/* As the hypervisor sees them: aliasing functions share one id. */
	for_each_pci_dev(pdev)
		cb(ctx, (u32)pci_domain_nr(pdev->bus) << 16 | pci_dev_id(pdev),
		   mshv_hvcall_pci_devid(pdev));
}
