// SPDX-License-Identifier: GPL-2.0
/*
 * C shim of hyperv_iommu_root: the iommu_ops tables, the static identity
 * and blocked domains, device probing (device ids from the DMA-alias walk),
 * reserved regions and registration. Domain state, map/unmap and attach are
 * in Rust (hv_iommu_main.rs); every hypercall goes through mshv_hvcall.ko.
 */

#include <linux/device.h>
#include <linux/err.h>
#include <linux/hyperv.h>
#include <linux/idr.h>
#include <linux/iommu.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/pci.h>
#include <linux/sizes.h>
#include <linux/slab.h>

#include <asm/mshyperv.h>

#include "hv_iommu.h"

static char hv_iommu_skip[256];
module_param_string(hv_iommu_skip, hv_iommu_skip, sizeof(hv_iommu_skip), 0444);
MODULE_PARM_DESC(hv_iommu_skip,
		 "PCI functions the IOMMU does not claim: (SSSS:BB:DD.F)(SSSS:BB:DD.F)...");

static char hv_iommu_dma[256];
module_param_string(hv_iommu_dma, hv_iommu_dma, sizeof(hv_iommu_dma), 0444);
MODULE_PARM_DESC(hv_iommu_dma,
		 "PCI functions whose default domain may translate (kernel default, iommu_group/type): (SSSS:BB:DD.F)...");

static unsigned int hv_iommu_max_domains = INT_MAX;
module_param(hv_iommu_max_domains, uint, 0444);
MODULE_PARM_DESC(hv_iommu_max_domains,
		 "Paging domains that may exist at once (domain ids 1..N), 1..2147483647 (default)");

/* The x86 MSI window, reserved in every paging domain. */
#define HVIR_MSI_START	0xfee00000UL
#define HVIR_MSI_SIZE	0x100000UL
/* Domain ids tried when CREATE_DEVICE_DOMAIN says the id is taken. */
#define HVIR_CREATE_TRIES	8
/* Device addresses are 48 bits (the hypervisor's page-table reach). */
#define HVIR_IOVA_END	((1ULL << 48) - 1)

struct hvir_domain {
	struct iommu_domain domain;
	/* Rust state of a paging domain; NULL for identity and blocked. */
	void *rs;
	u32 id;
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

static struct hvir_domain *to_hvir(struct iommu_domain *domain)
{
	return container_of(domain, struct hvir_domain, domain);
}

static int hvir_attach_dev(struct iommu_domain *domain, struct device *dev,
			   struct iommu_domain *old)
{
	struct hvir_dev *hd = dev_iommu_priv_get(dev);

	if (!hd)
		return -ENODEV;
	return hvir_rs_attach(hd->devid, to_hvir(domain)->id, to_hvir(domain)->rs,
			      old ? to_hvir(old)->rs : NULL);
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

static int hvir_map_pages(struct iommu_domain *domain, unsigned long iova,
			  phys_addr_t paddr, size_t pgsize, size_t pgcount,
			  int prot, gfp_t gfp, size_t *mapped)
{
	if (pgsize != SZ_4K)
		return -EINVAL;
	return hvir_rs_map(to_hvir(domain)->rs, iova, paddr, pgcount, prot,
			   !gfpflags_allow_blocking(gfp), mapped);
}

static size_t hvir_unmap_pages(struct iommu_domain *domain, unsigned long iova,
			       size_t pgsize, size_t pgcount,
			       struct iommu_iotlb_gather *gather)
{
	if (pgsize != SZ_4K)
		return 0;
	return hvir_rs_unmap(to_hvir(domain)->rs, iova, pgcount) * SZ_4K;
}

static phys_addr_t hvir_iova_to_phys(struct iommu_domain *domain,
				     dma_addr_t iova)
{
	return hvir_rs_iova_to_phys(to_hvir(domain)->rs, iova);
}

static void hvir_domain_free(struct iommu_domain *domain)
{
	struct hvir_domain *d = to_hvir(domain);

	/* A domain the hypervisor keeps is quarantined with its id. */
	if (hvir_rs_domain_free(d->rs))
		ida_free(&hvir_ida, d->id);
	kfree(d);
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
	int id, tries, err = -ENOMEM;

	/* No nesting, dirty tracking or PASID: S2 domains only. */
	if (flags || user_data)
		return ERR_PTR(-EOPNOTSUPP);
	d = kzalloc_obj(*d);
	if (!d)
		return ERR_PTR(-ENOMEM);
	for (tries = 0; ; tries++) {
		/* Never 0 (default domain) or U32_MAX (NULL domain). */
		id = ida_alloc_range(&hvir_ida, 1, hv_iommu_max_domains, GFP_KERNEL);
		if (id < 0) {
			if (id == -ENOSPC)
				dev_warn_ratelimited(dev, "no free domain id (hv_iommu_max_domains=%u)\n",
						     hv_iommu_max_domains);
			kfree(d);
			return ERR_PTR(id);
		}
		d->id = id;
		d->rs = hvir_rs_domain_new(id, &err);
		if (d->rs)
			break;
		/*
		 * -EACCES: the hypervisor already has a domain with this id (one
		 * we failed to delete before a reload, or not ours). Keep the id
		 * allocated so that it is never tried again, and take the next.
		 */
		if (err != -EACCES || tries >= HVIR_CREATE_TRIES) {
			ida_free(&hvir_ida, id);
			kfree(d);
			return ERR_PTR(err);
		}
		dev_warn(dev, "domain id %d is taken in the hypervisor; skipped\n", id);
	}
	/* iommufd uses the domain as returned; the core overwrites the type. */
	d->domain.type = IOMMU_DOMAIN_UNMANAGED;
	d->domain.ops = &hvir_paging_ops;
	d->domain.pgsize_bitmap = SZ_4K;
	d->domain.geometry.aperture_start = 0;
	d->domain.geometry.aperture_end = HVIR_IOVA_END;
	d->domain.geometry.force_aperture = true;
	return &d->domain;
}

struct hvir_alias {
	struct pci_dev *bridge;
	u16 rid;
};

/* As hv_build_devid_type_pci(): the last alias on another bus wins. */
static int hvir_alias_cb(struct pci_dev *pdev, u16 alias, void *data)
{
	struct hvir_alias *a = data;
	u8 bus = PCI_BUS_NUM(a->rid);

	if (pdev->bus->number != bus || PCI_BUS_NUM(alias) != bus) {
		a->bridge = pdev;
		a->rid = alias;
	}
	return 0;
}

/*
 * pci_for_each_dma_alias() is not exported to modules in 7.3; this is its
 * walk (drivers/pci/search.c) without pci_real_dma_dev() (only VMD
 * overrides it; not exported either). 256 devfns on a bus (MAX_NR_DEVFNS).
 */
typedef int (*hvir_alias_fn)(struct pci_dev *pdev, u16 alias, void *data);

static void hvir_walk_dma_aliases(struct pci_dev *pdev, hvir_alias_fn fn,
				  void *data)
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

static u64 hvir_devid(struct pci_dev *pdev)
{
	u16 rid = pci_dev_id(pdev);
	struct hvir_alias a = { .bridge = NULL, .rid = rid };
	u8 sec = 0, sub = 0;
	bool pcix = false;
	int pos;

	hvir_walk_dma_aliases(pdev, hvir_alias_cb, &a);
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
	return hvir_rs_pci_devid(pci_domain_nr(pdev->bus), rid, !!a.bridge,
				 a.rid, pcix, sec, sub);
}

/*
 * L1VH only (never runs on the simulator, which models a root partition):
 * the function must be on a Hyper-V virtual PCI bus, whose host bridge
 * pci-hyperv parents to the VMBus device. Its logical id comes from that
 * device's instance GUID, as pci-hyperv's hv_pci_vmbus_device_id() (not in
 * 7.3) computes it. -ENODEV for a function on any other bus.
 */
static int hvir_l1vh_devid(struct pci_dev *pdev, u64 *devid)
{
	struct device *parent = pci_find_host_bridge(pdev->bus)->dev.parent;

	if (!parent || !parent->bus || strcmp(parent->bus->name, "vmbus"))
		return -ENODEV;
	*devid = hvir_rs_vmbus_devid(device_to_hv_device(parent)->dev_instance.b,
				     pdev->devfn);
	return 0;
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
	if (hv_l1vh_partition()) {
		if (hvir_l1vh_devid(pdev, &hd->devid)) {
			pci_info(pdev, "not claimed: not on a Hyper-V virtual PCI bus (L1VH)\n");
			kfree(hd);
			return ERR_PTR(-ENODEV);
		}
	} else {
		hd->devid = hvir_devid(pdev);
	}
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
	if (hvir_rs_in_use()) {
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

void hvir_id_free(u32 id)
{
	ida_free(&hvir_ida, id);
}

void hvir_ids_destroy(void)
{
	ida_destroy(&hvir_ida);
}
