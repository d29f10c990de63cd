// SPDX-License-Identifier: GPL-2.0
/*
 * C shim of hyperv_iommu_root: the iommu_ops tables, the static identity
 * and blocked domains, device probing (device ids from mshv_hvcall),
 * reserved regions, the domain id allocator and registration. Domain state,
 * map/unmap, attach and the device table are in Rust (hv_iommu_main.rs);
 * every hypercall goes through mshv_hvcall.ko.
 */

#include <linux/atomic.h>
#include <linux/device.h>
#include <linux/err.h>
#include <linux/generic_pt/iommu.h>
#include <linux/idr.h>
#include <linux/iommu.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/pci.h>
#include <linux/sizes.h>
#include <linux/slab.h>

#include "hv_iommu.h"
#include "hyperv_iommu_root.h"
#include "mshv_hvcall.h"

MODULE_IMPORT_NS("GENERIC_PT_IOMMU");

static char hv_iommu_skip[256];
module_param_string(hv_iommu_skip, hv_iommu_skip, sizeof(hv_iommu_skip), 0444);
MODULE_PARM_DESC(hv_iommu_skip,
		 "PCI functions the IOMMU does not claim: (SSSS:BB:DD.F)(SSSS:BB:DD.F)...");

static char hv_iommu_dma[256];
module_param_string(hv_iommu_dma, hv_iommu_dma, sizeof(hv_iommu_dma), 0444);
MODULE_PARM_DESC(hv_iommu_dma,
		 "PCI functions whose default domain may translate (kernel default, iommu_group/type): (SSSS:BB:DD.F)...");

#ifdef MSHV_PT_HAVE_MSHV_DEVICE
#include <linux/file.h>
#include <linux/mshv_device.h>

#include "../../../include/uapi/linux/hyperv_iommu_root.h"

static bool hv_iommu_direct_attach = true;
module_param(hv_iommu_direct_attach, bool, 0644);
MODULE_PARM_DESC(hv_iommu_direct_attach,
		 "Attach a VMM's device directly to its guest partition (translated by the guest's SLAT) when asked and what the VMM mapped agrees with guest memory (default); N: always device-domain translation");
#endif

static unsigned int hv_iommu_max_domains = INT_MAX;
module_param(hv_iommu_max_domains, uint, 0444);
MODULE_PARM_DESC(hv_iommu_max_domains,
		 "Paging domains that may exist at once (domain ids 1..N), 1..2147483647 (default)");

/* The x86 MSI window, reserved in every paging domain. */
#define HVIR_MSI_START	0xfee00000UL
#define HVIR_MSI_SIZE	0x100000UL
/* Device addresses are 48 bits (the hypervisor's page-table reach). */
#define HVIR_IOVA_BITS	48
#define HVIR_IOVA_END	((1ULL << HVIR_IOVA_BITS) - 1)
/* What the shadow stores natively, and so what the IOMMU core may not split. */
#define HVIR_PGSIZES	(SZ_4K | SZ_2M | SZ_1G)

struct hvir_domain {
	struct iommu_domain domain;
	/* Rust state of a paging domain; NULL for identity, blocked, nested. */
	void *rs;
	u32 id;
	/*
	 * A guest partition domain (IOMMU_DOMAIN_NESTED, iommufd): the partition
	 * it holds (a reference and a pin of its guest RAM, until it is freed),
	 * its provider's operations, and the paging domain it is nested on.
	 */
	void *partition;
	const struct mshv_partition_ops *pops;
	struct hvir_domain *parent;
};

/*
 * Per-function state (dev_iommu_priv). Where the hypervisor device is placed
 * is tracked on the Rust side per hypervisor device id (functions that alias
 * to one requester id share it). The list is protected by hvir_devs_lock.
 */
struct hvir_dev {
	u64 devid;
	/* In hv_iommu_dma: no identity requirement for the default domain. */
	bool may_translate;
	struct device *dev;
	struct list_head node;
};

static struct iommu_device hvir_iommu;
static DEFINE_IDA(hvir_ida);
/* Claimed devices, for the release control. */
static LIST_HEAD(hvir_devs);
static DEFINE_SPINLOCK(hvir_devs_lock);
/* Registration state, changed by init, the release control and exit. */
static DEFINE_MUTEX(hvir_reg_lock);
static bool hvir_registered;
static const struct iommu_ops hvir_ops;

const char *hvir_skip_list(void)
{
	return hv_iommu_skip;
}

const char *hvir_dma_list(void)
{
	return hv_iommu_dma;
}

unsigned int hvir_max_domains(void)
{
	return hv_iommu_max_domains;
}

void hvir_cond_resched(void)
{
	cond_resched();
}

static struct hvir_domain *to_hvir(struct iommu_domain *domain)
{
	return container_of(domain, struct hvir_domain, domain);
}

/*
 * The paging domain state a device in @old is at home in: @old's own, or
 * for a guest partition domain its parent's (where the device returns to);
 * NULL for none, identity and blocked.
 */
static void *hvir_home_rs(struct iommu_domain *old)
{
	struct hvir_domain *h;

	if (!old)
		return NULL;
	h = to_hvir(old);
	return h->parent ? h->parent->rs : h->rs;
}

static int hvir_attach_dev(struct iommu_domain *domain, struct device *dev,
			   struct iommu_domain *old)
{
	struct hvir_dev *hd = dev_iommu_priv_get(dev);

	if (!hd)
		return -ENODEV;
	/* The DMA API maps atomically: its domains are never emptied. */
	if (iommu_is_dma_domain(domain) && to_hvir(domain)->rs)
		hvir_rs_keep_filled(to_hvir(domain)->rs);
	return hvir_rs_attach(hd->devid, to_hvir(domain)->id, to_hvir(domain)->rs,
			      hvir_home_rs(old));
}

static const struct iommu_domain_ops hvir_special_ops = {
	.attach_dev = hvir_attach_dev,
};

/* The hypervisor's boot-time default domain 0: identity over root memory. */
static struct hvir_domain hvir_identity = {
	.domain = {
		.type = IOMMU_DOMAIN_IDENTITY,
		.ops = &hvir_special_ops,
	},
	.id = 0,
};

/* The hypervisor's NULL domain: blocks DMA. */
static struct hvir_domain hvir_blocked = {
	.domain = {
		.type = IOMMU_DOMAIN_BLOCKED,
		.ops = &hvir_special_ops,
	},
	.id = U32_MAX,
};

/*
 * The shadow of a paging domain: the kernel's generic page table in the x86-64
 * format (4K/2M/1G leaves, lockless lookups; selected by both INTEL_IOMMU and
 * AMD_IOMMU, so present wherever an x86 IOMMU driver is), private to the
 * driver. It is not
 * the iommu_domain the core sees (that one's map/unmap must also reach the
 * hypervisor); the Rust side owns it and keeps it consistent with the
 * hypervisor. Callers follow generic_pt's range-lock rule, which the IOMMU
 * core's own callers guarantee.
 */
void *hvir_shadow_new(int *err)
{
	struct pt_iommu_x86_64_cfg cfg = {
		.common.hw_max_vasz_lg2 = HVIR_IOVA_BITS,
		.common.hw_max_oasz_lg2 = 52,
		/* Four levels: exactly the 48-bit IOVA space, no sign extension. */
		.top_level = 3,
	};
	struct pt_iommu_x86_64 *pt;

	pt = kzalloc_obj(*pt);
	if (!pt) {
		*err = -ENOMEM;
		return NULL;
	}
	pt->iommu.nid = NUMA_NO_NODE;
	*err = pt_iommu_x86_64_init(pt, &cfg, GFP_KERNEL_ACCOUNT);
	if (*err) {
		kfree(pt);
		return NULL;
	}
	return pt;
}

void hvir_shadow_free(void *shadow)
{
	struct pt_iommu_x86_64 *pt = shadow;

	pt_iommu_deinit(&pt->iommu);
	kfree(pt);
}

u64 hvir_shadow_unmap(void *shadow, u64 iova, u64 len)
{
	struct pt_iommu *pt = &((struct pt_iommu_x86_64 *)shadow)->iommu;
	struct iommu_iotlb_gather gather;
	size_t n;

	if (iova > HVIR_IOVA_END)
		return 0;
	len = min(len, HVIR_IOVA_END - iova + 1);
	iommu_iotlb_gather_init(&gather);
	n = pt->ops->unmap_range(pt, iova, len, &gather);
	/* No hardware walks the shadow: tables go straight back. */
	iommu_put_pages_list(&gather.freelist);
	return n;
}

int hvir_shadow_map(void *shadow, u64 iova, u64 paddr, u64 len, gfp_t gfp)
{
	struct pt_iommu *pt = &((struct pt_iommu_x86_64 *)shadow)->iommu;
	size_t mapped = 0;
	int ret;

	if (iova > HVIR_IOVA_END || len > HVIR_IOVA_END - iova + 1)
		return -EINVAL;
	ret = pt->ops->map_range(pt, iova, paddr, len, IOMMU_READ | IOMMU_WRITE,
				 gfp, &mapped);
	if (!ret)
		return 0;
	/* All or nothing: take back what this call mapped. */
	if (mapped)
		hvir_shadow_unmap(shadow, iova, mapped);
	return ret == -EADDRINUSE ? -EEXIST : ret;
}

u64 hvir_shadow_iova_to_phys(void *shadow, u64 iova)
{
	struct pt_iommu_x86_64 *pt = shadow;

	return pt_iommu_x86_64_iova_to_phys(&pt->iommu.domain, iova);
}

/* x86-64 format entries (generic_pt's fmt/x86_64.h, no table encryption). */
#define HVIR_PTE_PRESENT	BIT_ULL(0)
#define HVIR_PTE_PS		BIT_ULL(7)
#define HVIR_PTE_OA		GENMASK_ULL(51, 12)

static int hvir_shadow_leaf(const u64 *table, unsigned int level, u64 base,
			    u64 iova, u64 end, u64 *at, u64 *pa, u64 *len)
{
	unsigned int shift = 12 + 9 * level, i;

	for (i = (iova - base) >> shift; i < 512; i++) {
		u64 va = base + ((u64)i << shift), e = READ_ONCE(table[i]);
		u64 from = max(iova, va);

		if (from >= end)
			break;
		if (!(e & HVIR_PTE_PRESENT))
			continue;
		if (level == 0 || (level <= 2 && (e & HVIR_PTE_PS))) {
			*at = from;
			*pa = (e & HVIR_PTE_OA & ~((1ULL << shift) - 1)) + (from - va);
			*len = va + (1ULL << shift) - from;
			return 0;
		}
		if (!hvir_shadow_leaf(__va(e & HVIR_PTE_OA), level - 1, va, from, end,
				      at, pa, len))
			return 0;
	}
	return -ENOENT;
}

/*
 * The first present leaf of the shadow at or after @iova and below @end: 0
 * with *@at (the first IOVA of it at or after @iova), *@pa (the physical
 * address there) and *@len (bytes from there to the leaf's end); -ENOENT if
 * there is none. Walks the table's entries, skipping absent tables whole
 * (generic_pt exports no walk of present leaves; its x86-64 format is the
 * x86 page-table format, and hvir_shadow_new() enables no encryption).
 * The caller keeps unmaps, which free tables, from running meanwhile.
 */
int hvir_shadow_next(void *shadow, u64 iova, u64 end, u64 *at, u64 *pa, u64 *len)
{
	struct pt_iommu_x86_64 *pt = shadow;
	uintptr_t top = READ_ONCE(pt->x86_64_pt.common.top_of_table);
	unsigned int level = top & PT_TOP_LEVEL_MASK;
	const u64 *table = (const u64 *)(top & ~(uintptr_t)PT_TOP_LEVEL_MASK);

	end = min(end, 1ULL << (12 + 9 * (level + 1)));
	if (iova >= end)
		return -ENOENT;
	return hvir_shadow_leaf(table, level, 0, iova, end, at, pa, len);
}

static int hvir_map_pages(struct iommu_domain *domain, unsigned long iova,
			  phys_addr_t paddr, size_t pgsize, size_t pgcount,
			  int prot, gfp_t gfp, size_t *mapped)
{
	size_t pages;

	/* pgsize is one of HVIR_PGSIZES; the hypervisor maps 4K pages. */
	if (check_mul_overflow(pgsize / SZ_4K, pgcount, &pages))
		return -EOVERFLOW;
	return hvir_rs_map(to_hvir(domain)->rs, iova, paddr, pages, prot, gfp,
			   mapped);
}

static size_t hvir_unmap_pages(struct iommu_domain *domain, unsigned long iova,
			       size_t pgsize, size_t pgcount,
			       struct iommu_iotlb_gather *gather)
{
	size_t pages;

	if (check_mul_overflow(pgsize / SZ_4K, pgcount, &pages))
		return 0;
	return hvir_rs_unmap(to_hvir(domain)->rs, iova, pages) * SZ_4K;
}

static phys_addr_t hvir_iova_to_phys(struct iommu_domain *domain,
				     dma_addr_t iova)
{
	return hvir_rs_iova_to_phys(to_hvir(domain)->rs, iova);
}

static void hvir_domain_free(struct iommu_domain *domain)
{
	struct hvir_domain *d = to_hvir(domain);

	hvir_rs_domain_free(d->rs);
	kfree(d);
	/* Last: the release control counts this domain until here. */
	hvir_rs_domain_gone();
}

static const struct iommu_domain_ops hvir_paging_ops = {
	.attach_dev = hvir_attach_dev,
	.map_pages = hvir_map_pages,
	.unmap_pages = hvir_unmap_pages,
	.iova_to_phys = hvir_iova_to_phys,
	.free = hvir_domain_free,
};

static struct iommu_domain *
hvir_domain_alloc_paging_flags(struct device *dev, u32 flags,
			       const struct iommu_user_data *user_data)
{
	struct hvir_domain *d;
	int err = -ENOMEM;

	/*
	 * S2 domains only: no dirty tracking or PASID. Every paging domain can
	 * be the parent of a guest partition domain, so NEST_PARENT changes
	 * nothing (with a kernel that has mshv_device.h).
	 */
	if (user_data)
		return ERR_PTR(-EOPNOTSUPP);
#ifdef MSHV_PT_HAVE_MSHV_DEVICE
	flags &= ~IOMMU_HWPT_ALLOC_NEST_PARENT;
#endif
	if (flags)
		return ERR_PTR(-EOPNOTSUPP);
	d = kzalloc_obj(*d);
	if (!d)
		return ERR_PTR(-ENOMEM);
	d->rs = hvir_rs_domain_new(&d->id, &err);
	if (!d->rs) {
		if (err == -ENOSPC)
			dev_warn_ratelimited(dev, "no free domain id (hv_iommu_max_domains=%u)\n",
					     hv_iommu_max_domains);
		kfree(d);
		return ERR_PTR(err);
	}
	/* iommufd uses the domain as returned; the core overwrites the type. */
	d->domain.type = IOMMU_DOMAIN_UNMANAGED;
	d->domain.ops = &hvir_paging_ops;
	d->domain.pgsize_bitmap = HVIR_PGSIZES;
	d->domain.geometry.aperture_start = 0;
	d->domain.geometry.aperture_end = HVIR_IOVA_END;
	d->domain.geometry.force_aperture = true;
	return &d->domain;
}

static struct iommu_device *hvir_probe_device(struct device *dev)
{
	struct pci_dev *pdev;
	struct hvir_dev *hd;
	int ret;

	if (!dev_is_pci(dev))
		return ERR_PTR(-ENODEV);
	pdev = to_pci_dev(dev);
	if (hvir_rs_skip(hv_iommu_skip, pci_domain_nr(pdev->bus),
			 pdev->bus->number, pdev->devfn)) {
		pci_info(pdev, "not claimed (hv_iommu_skip)\n");
		return ERR_PTR(-ENODEV);
	}
	/*
	 * A driver bound before this module registered keeps direct DMA: the
	 * IOMMU core cannot move a device that is in use under a new IOMMU.
	 */
	if (dev->driver) {
		pci_info(pdev, "not claimed: bound to %s before the IOMMU registered\n",
			 dev->driver->name);
		return ERR_PTR(-ENODEV);
	}
	hd = kzalloc_obj(*hd);
	if (!hd)
		return ERR_PTR(-ENOMEM);
	hd->devid = mshv_hvcall_pci_devid(pdev);
	hd->may_translate = hvir_rs_skip(hv_iommu_dma, pci_domain_nr(pdev->bus),
					 pdev->bus->number, pdev->devfn);
	ret = hvir_rs_device_add(hd->devid);
	if (ret) {
		kfree(hd);
		return ERR_PTR(ret);
	}
	hd->dev = dev;
	spin_lock(&hvir_devs_lock);
	list_add_tail(&hd->node, &hvir_devs);
	spin_unlock(&hvir_devs_lock);
	dev_iommu_priv_set(dev, hd);
	return &hvir_iommu;
}

static void hvir_release_device(struct device *dev)
{
	struct hvir_dev *hd = dev_iommu_priv_get(dev);

	if (hd) {
		spin_lock(&hvir_devs_lock);
		list_del(&hd->node);
		spin_unlock(&hvir_devs_lock);
		hvir_rs_device_remove(hd->devid);
	}
	/* The core frees dev->iommu (and with it the priv pointer) next. */
	kfree(hd);
}

/* The hypervisor device id of @pdev if this driver claimed it. */
static bool hvir_devid(struct pci_dev *pdev, u64 *devid)
{
	struct hvir_dev *hd;
	bool found = false;

	spin_lock(&hvir_devs_lock);
	list_for_each_entry(hd, &hvir_devs, node) {
		if (hd->dev == &pdev->dev) {
			*devid = hd->devid;
			found = true;
			break;
		}
	}
	spin_unlock(&hvir_devs_lock);
	return found;
}

int hvir_device_info(struct pci_dev *pdev, struct hvir_device_info *info)
{
	u32 placement, domain;
	u64 devid, partition;
	int ret;

	if (!hvir_devid(pdev, &devid))
		return -ENODEV;
	ret = hvir_rs_device_info(devid, &info->users, &placement, &domain,
				  &partition);
	if (ret)
		return ret;
	info->devid = devid;
	info->placement = placement;
	info->domain = domain;
	info->partition = partition;
	return 0;
}
EXPORT_SYMBOL_GPL(hvir_device_info);

#ifdef MSHV_PT_HAVE_MSHV_DEVICE
/*
 * Takes the provider's module, a partition reference and a pin of its guest
 * RAM, and asks the Rust side to move hypervisor device @devid into the
 * partition. 0: moved, the hold keeps all three; 1: in that guest already;
 * else -errno. Both give everything back but the move.
 */
static int hvir_guest_enter(u64 devid, void *partition,
			    const struct mshv_partition_ops *ops)
{
	int ret;

	if (!try_module_get(ops->owner))
		return -ENODEV;
	if (!ops->get(partition)) {
		module_put(ops->owner);
		return -ENODEV;
	}
	ret = ops->pin_guest(partition);
	if (ret) {
		ops->put(partition);
		module_put(ops->owner);
		return ret;
	}
	ret = hvir_rs_attach_guest(devid, partition, ops, ops->id(partition));
	if (ret)
		hvir_guest_release(partition, ops);
	return ret;
}

int hvir_attach_guest(struct pci_dev *pdev, void *partition,
		      const struct mshv_partition_ops *ops)
{
	u64 devid;

	if (!hv_iommu_direct_attach)
		return -EPERM;
	if (!hvir_devid(pdev, &devid))
		return -ENODEV;
	return hvir_guest_enter(devid, partition, ops);
}
EXPORT_SYMBOL_GPL(hvir_attach_guest);

int hvir_detach_guest(struct pci_dev *pdev, void *partition)
{
	u64 devid;

	return hvir_devid(pdev, &devid) ? hvir_rs_detach_guest(devid, partition) : -ENODEV;
}
EXPORT_SYMBOL_GPL(hvir_detach_guest);

int hvir_guest_page(void *partition, const void *ops, u64 gfn, u64 *pfn,
		    bool *writable)
{
	const struct mshv_partition_ops *pops = ops;

	return pops->guest_page(partition, gfn, pfn, writable);
}

void hvir_guest_release(void *partition, const void *ops)
{
	const struct mshv_partition_ops *pops = ops;
	struct module *owner = pops->owner;

	pops->unpin_guest(partition);
	pops->put(partition);
	module_put(owner);
}

/* Guest partition domains alive: each holds a partition, and its free is ours. */
static atomic_t hvir_nested_live = ATOMIC_INIT(0);

/*
 * Attaching a device to a guest partition domain moves it into the parent
 * domain (its home) and from there directly into the partition. Only the
 * first step can fail the attach (then the device is where it was). If the
 * second is refused (the policy, a mapping that disagrees, a hypercall),
 * the device stays in the parent, whose translation is exact, and the log
 * says why: the same state as after a later map that disagrees. This keeps
 * a re-attach that must not fail (after a PCI reset, the core re-attaches
 * the group's domain from the blocking domain) from leaving it blocked.
 * The IOMMU core detaches it by attaching any other domain
 * (hvir_attach_dev() moves it out of the guest).
 */
static int hvir_nested_attach_dev(struct iommu_domain *domain,
				  struct device *dev, struct iommu_domain *old)
{
	struct hvir_dev *hd = dev_iommu_priv_get(dev);
	struct hvir_domain *n = to_hvir(domain), *p = n->parent;
	int ret;

	if (!hd)
		return -ENODEV;
	if (old != &p->domain) {
		ret = hvir_rs_attach(hd->devid, p->id, p->rs, hvir_home_rs(old));
		if (ret)
			return ret;
	}
	ret = hv_iommu_direct_attach ? hvir_guest_enter(hd->devid, n->partition, n->pops)
				     : -EPERM;
	if (ret < 0)
		dev_info(dev, "device-domain translation in domain %u (direct attach: %d)\n",
			 p->id, ret);
	return 0;
}

static void hvir_nested_free(struct iommu_domain *domain)
{
	struct hvir_domain *n = to_hvir(domain);

	hvir_guest_release(n->partition, n->pops);
	kfree(n);
	atomic_dec(&hvir_nested_live);
}

static bool hvir_nested_in_use(void)
{
	return atomic_read(&hvir_nested_live);
}

static const struct iommu_domain_ops hvir_nested_ops = {
	.attach_dev = hvir_nested_attach_dev,
	.free = hvir_nested_free,
};

/*
 * IOMMU_HWPT_ALLOC of a guest partition HWPT: nested on one of our paging
 * domains, naming the partition by the bridge device fd the VMM created on
 * it (resolved by mshv_vfio, found with symbol_get() so that this driver
 * does not depend on it). The domain holds the partition and a pin of its
 * guest RAM until it is freed.
 */
static struct iommu_domain *
hvir_domain_alloc_nested(struct device *dev, struct iommu_domain *parent,
			 u32 flags, const struct iommu_user_data *user_data)
{
	int (*lookup)(struct file *file, void **partition,
		      const struct mshv_partition_ops **ops);
	struct iommu_hwpt_hyperv_partition data;
	const struct mshv_partition_ops *pops;
	struct hvir_domain *n;
	void *partition;
	struct file *f;
	int ret;

	if (flags || user_data->type != IOMMU_HWPT_DATA_HYPERV_PARTITION)
		return ERR_PTR(-EOPNOTSUPP);
	if (parent->ops != &hvir_paging_ops)
		return ERR_PTR(-EINVAL);
	ret = iommu_copy_struct_from_user(&data, user_data,
					  IOMMU_HWPT_DATA_HYPERV_PARTITION,
					  __reserved);
	if (ret)
		return ERR_PTR(ret);
	if (data.__reserved)
		return ERR_PTR(-EINVAL);
	if (!hv_iommu_direct_attach)
		return ERR_PTR(-EPERM);
	f = fget(data.fd);
	if (!f)
		return ERR_PTR(-EBADF);
	lookup = symbol_get(mshv_vfio_partition_of_file);
	if (!lookup) {
		fput(f);
		return ERR_PTR(-ENODEV);
	}
	ret = lookup(f, &partition, &pops);
	symbol_put(mshv_vfio_partition_of_file);
	/* The bridge device file pins the provider until fput(): hold it on first. */
	if (!ret && !try_module_get(pops->owner)) {
		pops->put(partition);
		ret = -ENODEV;
	}
	fput(f);
	if (ret)
		return ERR_PTR(ret);
	ret = pops->pin_guest(partition);
	if (ret)
		goto put;
	ret = -ENOMEM;
	n = kzalloc_obj(*n);
	if (!n)
		goto unpin;
	n->domain.type = IOMMU_DOMAIN_NESTED;
	n->domain.ops = &hvir_nested_ops;
	n->partition = partition;
	n->pops = pops;
	n->parent = to_hvir(parent);
	n->id = n->parent->id;
	atomic_inc(&hvir_nested_live);
	return &n->domain;
unpin:
	pops->unpin_guest(partition);
put:
	pops->put(partition);
	module_put(pops->owner);
	return ERR_PTR(ret);
}
#else
/* No provider interface in this kernel: no device is ever in a guest. */
int hvir_guest_page(void *partition, const void *ops, u64 gfn, u64 *pfn,
		    bool *writable)
{
	return -ENOENT;
}

void hvir_guest_release(void *partition, const void *ops)
{
}

static bool hvir_nested_in_use(void)
{
	return false;
}
#endif

#if IS_ENABLED(CONFIG_KUNIT)
/*
 * For the module's KUnit suite: hvir_device_info() of every PCI
 * function agrees with the claims (-ENODEV exactly for the unclaimed) and
 * with mshv_hvcall_pci_devid(). Returns the claimed functions checked, or -1
 * on the first disagreement.
 */
int hvir_kunit_check_device_info(void)
{
	struct hvir_device_info info;
	struct pci_dev *pdev = NULL;
	struct hvir_dev *hd;
	int n = 0, ret;
	bool claimed;

	for_each_pci_dev(pdev) {
		claimed = false;
		spin_lock(&hvir_devs_lock);
		list_for_each_entry(hd, &hvir_devs, node)
			claimed |= hd->dev == &pdev->dev;
		spin_unlock(&hvir_devs_lock);
		ret = hvir_device_info(pdev, &info);
		if (!claimed && ret == -ENODEV)
			continue;
		if (!claimed || ret || info.devid != mshv_hvcall_pci_devid(pdev) ||
		    !info.users || info.placement == HVIR_MOVING) {
			pci_dev_put(pdev);
			return -1;
		}
		n++;
	}
	return n;
}
#endif

static struct iommu_group *hvir_device_group(struct device *dev)
{
	if (dev_is_pci(dev))
		return pci_device_group(dev);
	return generic_device_group(dev);
}

static void hvir_get_resv_regions(struct device *dev, struct list_head *head)
{
	struct iommu_resv_region *r;

	r = iommu_alloc_resv_region(HVIR_MSI_START, HVIR_MSI_SIZE, 0,
				    IOMMU_RESV_MSI, GFP_KERNEL);
	if (r)
		list_add_tail(&r->list, head);
}

static bool hvir_capable(struct device *dev, enum iommu_cap cap)
{
	return cap == IOMMU_CAP_CACHE_COHERENCY;
}

/*
 * Identity (the hypervisor's default domain 0), unless the device is in
 * hv_iommu_dma: then no requirement, so the kernel's default domain type
 * (iommu.passthrough, CONFIG_IOMMU_DEFAULT_*) and iommu_group/type decide and
 * a DMA-API domain is one of our paging domains.
 */
static int hvir_def_domain_type(struct device *dev)
{
	struct hvir_dev *hd = dev_iommu_priv_get(dev);

	return hd && hd->may_translate ? 0 : IOMMU_DOMAIN_IDENTITY;
}

static const struct iommu_ops hvir_ops = {
	.capable = hvir_capable,
	.domain_alloc_paging_flags = hvir_domain_alloc_paging_flags,
#ifdef MSHV_PT_HAVE_MSHV_DEVICE
	.domain_alloc_nested = hvir_domain_alloc_nested,
#endif
	.probe_device = hvir_probe_device,
	.release_device = hvir_release_device,
	.device_group = hvir_device_group,
	.get_resv_regions = hvir_get_resv_regions,
	.def_domain_type = hvir_def_domain_type,
	.default_domain_ops = &hvir_paging_ops,
	.owner = THIS_MODULE,
	.identity_domain = &hvir_identity.domain,
	.blocked_domain = &hvir_blocked.domain,
	.release_domain = &hvir_identity.domain,
};

int hvir_register(void)
{
	int ret;

	mutex_lock(&hvir_reg_lock);
	ret = iommu_device_sysfs_add(&hvir_iommu, NULL, NULL, "hyperv-iommu-root");
	if (ret)
		goto out;
	ret = iommu_device_register(&hvir_iommu, &hvir_ops, NULL);
	if (ret)
		iommu_device_sysfs_remove(&hvir_iommu);
	else
		hvir_registered = true;
out:
	mutex_unlock(&hvir_reg_lock);
	return ret;
}

static void hvir_unregister_locked(void)
{
	lockdep_assert_held(&hvir_reg_lock);
	if (!hvir_registered)
		return;
	iommu_device_unregister(&hvir_iommu);
	iommu_device_sysfs_remove(&hvir_iommu);
	hvir_registered = false;
}

/*
 * The release control: unregisters the IOMMU so that the module can be
 * unloaded (the IOMMU core holds a module reference per claimed device).
 * -EBUSY while a paging domain exists (the core would call into the module
 * to free it), a device is attached to anything but the identity domain, or
 * a claimed device is bound to a driver; nothing changes then.
 */
int hvir_release(void)
{
	struct hvir_dev *hd;
	int ret = 0;

	mutex_lock(&hvir_reg_lock);
	if (hvir_rs_in_use() || hvir_nested_in_use()) {
		pr_info("hyperv_iommu_root: a domain or an attached device exists; the IOMMU stays registered\n");
		mutex_unlock(&hvir_reg_lock);
		return -EBUSY;
	}
	spin_lock(&hvir_devs_lock);
	list_for_each_entry(hd, &hvir_devs, node) {
		if (READ_ONCE(hd->dev->driver)) {
			dev_info(hd->dev, "in use: the IOMMU stays registered\n");
			ret = -EBUSY;
			break;
		}
	}
	spin_unlock(&hvir_devs_lock);
	if (!ret)
		hvir_unregister_locked();
	mutex_unlock(&hvir_reg_lock);
	return ret;
}

void hvir_unregister(void)
{
	mutex_lock(&hvir_reg_lock);
	hvir_unregister_locked();
	mutex_unlock(&hvir_reg_lock);
}

/*
 * Paging-domain ids. The IDA stays here because DEFINE_IDA() is a macro and
 * 7.3 has no Rust IDA; when to allocate and free is decided in Rust.
 */
int hvir_id_alloc(void)
{
	/* Never 0 (default domain) or U32_MAX (NULL domain). */
	return ida_alloc_range(&hvir_ida, 1, hv_iommu_max_domains, GFP_KERNEL);
}

void hvir_id_free(u32 id)
{
	ida_free(&hvir_ida, id);
}

void hvir_ids_destroy(void)
{
	ida_destroy(&hvir_ida);
}
