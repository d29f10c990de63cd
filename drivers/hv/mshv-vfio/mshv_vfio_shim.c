// SPDX-License-Identifier: GPL-2.0
/*
 * Thin C part of the mshv-vfio bridge: the VFIO device type that a partition
 * provider (mshv_root with patches/linux-7.3/0002, or the simulated /dev/mshv
 * of mshv_hvcall) looks up with symbol_get(mshv_vfio_device_type), and the
 * partition reference the bridge holds through the provider's operations.
 * Every rule of the attribute ioctls is in mshv_vfio_main.rs.
 * Documentation/mshv-vfio-bridge.rst.
 */

#include <linux/errno.h>
#include <linux/export.h>
#include <linux/module.h>
#include <linux/mshv_device.h>
#include <linux/vfio.h>
#include <uapi/linux/mshv.h>

#include "mshv_vfio.h"

bool mshv_vfio_file_is_vfio(struct file *file)
{
	return vfio_file_is_valid(file);
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
	bridge = mshv_vfio_rs_create(ops->id(partition), &err);
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
