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
static bool backend_ready;
static atomic64_t pages_out = ATOMIC64_INIT(0);

int mshv_hvcall_native_probe(void)
{
#if IS_ENABLED(CONFIG_HYPERV)
	/* native only */
	if (!hv_is_hyperv_initialized())
		return -ENODEV;
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

int mshv_hvcall_setup(mshv_hvcall_sim_t sim, void *ctx)
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

void *mshv_hvcall_sim_ctx(void)
{
	/* Pairs with mshv_hvcall_setup(): sim_ctx is set when ready. */
	return smp_load_acquire(&backend_ready) ? sim_ctx : NULL;
}
EXPORT_SYMBOL_GPL(mshv_hvcall_sim_ctx);

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

	/* PCI-type ids (type 1 in bits 62..63): segment << 16 | requester id. */
	for_each_pci_dev(pdev)
		cb(ctx, BIT_ULL(62) | (u64)pci_domain_nr(pdev->bus) << 16 |
		   pci_dev_id(pdev));
}
