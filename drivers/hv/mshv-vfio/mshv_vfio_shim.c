// SPDX-License-Identifier: GPL-2.0
/*
 * Thin C part of the mshv-vfio bridge: the VFIO device type that a partition
 * provider (mshv_root with patches/linux-7.3/0002, or the simulated /dev/mshv
 * of mshv_hvcall) looks up with symbol_get(mshv_vfio_device_type), and the
 * partition reference the bridge holds through the provider's operations,
 * and the lookups Rust cannot make: the PCI functions behind a VFIO file,
 * and the IOMMU driver's direct attach (hyperv_iommu_root.h). Every rule of
 * the attribute ioctls is in mshv_vfio_main.rs.
 * Documentation/mshv-vfio-bridge.rst.
 */

#include <linux/errno.h>
#include <linux/export.h>
#include <linux/iommu.h>
#include <linux/module.h>
#include <linux/mshv_device.h>
#include <linux/pci.h>
#include <linux/vfio.h>
#include <uapi/linux/mshv.h>

#include "hyperv_iommu_root.h"
#include "mshv_vfio.h"

bool mshv_vfio_file_is_vfio(struct file *file)
{
	return vfio_file_is_valid(file);
}

struct mshv_vfio_devs {
	struct pci_dev **devs;
	int max, n;
};

static int mshv_vfio_add_dev(struct device *dev, void *data)
{
	struct mshv_vfio_devs *d = data;

	if (!dev_is_pci(dev))
		return 0;
	if (d->n == d->max)
		return -E2BIG;
	d->devs[d->n++] = pci_dev_get(to_pci_dev(dev));
	return 0;
}

int mshv_vfio_file_pci_devs(struct file *file, struct pci_dev **devs, int max)
{
	struct mshv_vfio_devs d = { .devs = devs, .max = max };
	struct iommu_group *group;
	struct device *dev;
	int ret;

	dev = vfio_file_device(file);
	if (dev) {
		ret = mshv_vfio_add_dev(dev, &d);
	} else {
		group = vfio_file_iommu_group(file);
		if (!group)
			return 0;
		ret = iommu_group_for_each_dev(group, &d, mshv_vfio_add_dev);
		iommu_group_put(group);
	}
	if (ret) {
		while (d.n)
			pci_dev_put(devs[--d.n]);
		return ret;
	}
	return d.n;
}

/*
 * hyperv_iommu_root's functions are found with symbol_get(): the bridge
 * works without that driver (e.g. where it does not load), and then no
 * device is attached directly.
 */
int mshv_vfio_attach(void *mdev, struct pci_dev *pdev)
{
	struct mshv_device *dev = mdev;
	int (*attach)(struct pci_dev *pdev, void *partition,
		      const struct mshv_partition_ops *ops);
	int ret = -ENODEV;

	attach = symbol_get(hvir_attach_guest);
	if (attach) {
		ret = attach(pdev, dev->partition, dev->partition_ops);
		symbol_put(hvir_attach_guest);
	}
	if (ret < 0)
		pci_info(pdev, "mshv-vfio: device-domain translation (direct attach: %d)\n",
			 ret);
	else if (!ret)
		pci_info(pdev, "mshv-vfio: attached directly to partition %llu\n",
			 dev->partition_ops->id(dev->partition));
	return ret;
}

void mshv_vfio_detach(void *mdev, struct pci_dev *pdev)
{
	struct mshv_device *dev = mdev;
	int (*detach)(struct pci_dev *pdev, void *partition);
	int ret = -ENODEV;

	/* Attached through the driver, so it is loaded and stays while the device is in. */
	detach = symbol_get(hvir_detach_guest);
	if (detach) {
		ret = detach(pdev, dev->partition);
		symbol_put(hvir_detach_guest);
	}
	/* -ENOENT: the IOMMU core moved it out already (VFIO released it). */
	if (ret && ret != -ENOENT)
		pci_err(pdev, "mshv-vfio: still in its partition: %d\n", ret);
}

void mshv_vfio_pci_put(struct pci_dev *pdev)
{
	pci_dev_put(pdev);
}

bool mshv_vfio_pci_direct(struct pci_dev *pdev)
{
	int (*device_info)(struct pci_dev *pdev, struct hvir_device_info *info);
	struct hvir_device_info info;
	bool in = false;

	device_info = symbol_get(hvir_device_info);
	if (device_info) {
		in = !device_info(pdev, &info) && info.placement == HVIR_IN_PARTITION;
		symbol_put(hvir_device_info);
	}
	return in;
}

const char *mshv_vfio_pci_name(struct pci_dev *pdev)
{
	return pci_name(pdev);
}

int mshv_vfio_partition_of_file(struct file *file, void **partition,
				const struct mshv_partition_ops **ops)
{
	struct mshv_device *dev = file->private_data;

	/*
	 * A provider's device file has its struct mshv_device as private data.
	 * Rust compares the pointer with the live bridges' devices under the
	 * registry's lock (an unrelated file cannot point at a live device),
	 * and only then is @dev dereferenced, still under that lock.
	 */
	return mshv_vfio_rs_partition_of(dev, partition, (const void **)ops);
}
EXPORT_SYMBOL_GPL(mshv_vfio_partition_of_file);

int mshv_vfio_device_partition(void *mdev, void **partition, const void **ops)
{
	struct mshv_device *dev = mdev;
	void *pt = dev->partition_ops->get(dev->partition);

	if (!pt)
		return -ENODEV;
	*partition = pt;
	*ops = dev->partition_ops;
	return 0;
}

/*
 * The bridge holds the partition through the provider's operations for its
 * whole life: the partition outlives the bridge's references to VFIO files.
 */
static int mshv_vfio_create(struct mshv_device *dev)
{
	const struct mshv_partition_ops *ops = dev->partition_ops;
	void *partition = ops->get(dev->partition);
	void *bridge;
	int err = -ENOMEM;

	if (!partition)
		return -ENODEV;
	bridge = mshv_vfio_rs_create(ops->id(partition), dev, &err);
	if (!bridge) {
		ops->put(partition);
		return err;
	}
	dev->private = bridge;
	return 0;
}

/* The files go first, then the partition: the reverse of create. */
static void mshv_vfio_release(struct mshv_device *dev)
{
	mshv_vfio_rs_release(dev->private);
	dev->private = NULL;
	dev->partition_ops->put(dev->partition);
}

static long mshv_vfio_set_attr(struct mshv_device *dev,
			       struct mshv_device_attr *attr)
{
	return mshv_vfio_rs_set_attr(dev->private, attr->flags, attr->group,
				     attr->attr, attr->addr);
}

static long mshv_vfio_has_attr(struct mshv_device *dev,
			       struct mshv_device_attr *attr)
{
	return mshv_vfio_rs_has_attr(dev->private, attr->flags, attr->group,
				     attr->attr, attr->addr);
}

const struct mshv_device_type mshv_vfio_device_type = {
	.name = "mshv-vfio",
	.owner = THIS_MODULE,
	.create = mshv_vfio_create,
	.release = mshv_vfio_release,
	.set_attr = mshv_vfio_set_attr,
	.has_attr = mshv_vfio_has_attr,
};
EXPORT_SYMBOL_GPL(mshv_vfio_device_type);
