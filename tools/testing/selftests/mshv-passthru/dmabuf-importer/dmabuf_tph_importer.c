// SPDX-License-Identifier: GPL-2.0
/*
 * dmabuf_tph_importer: a dma-buf importer for tests, reading the PCIe TLP
 * Processing Hint an exporter gives for DMA to a dma-buf, as the driver of
 * a device writing into it would (dma_buf_get_pci_tph(), under the resv
 * lock). Test-only: never loaded outside the test plans.
 *
 * It attaches like a peer-to-peer importer that can be revoked (VFIO PCI
 * dma-bufs take no other), on behalf of a faux device, and counts the
 * exporter's invalidations. It does not map: the hint is read the way an
 * importer reads it when it maps.
 *
 * debugfs, dmabuf_tph_importer/:
 *   attach  write a dma-buf fd of the writing process: attach to it (one
 *           attachment at a time: -EBUSY)
 *   hint    read: "st RET TAG PH", "st_ext RET TAG PH" (RET 0, or the
 *           negative errno and no tag) and "invalidated N"
 *   detach  write anything: detach and drop the dma-buf (-ENOENT if none)
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/device/faux.h>
#include <linux/dma-buf.h>
#include <linux/dma-resv.h>
#include <linux/kstrtox.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/seq_file.h>
#include <linux/uaccess.h>

MODULE_IMPORT_NS("DMA_BUF");

static struct faux_device *dti_fdev;
static struct dentry *dti_dir;

/* The attachment; dti_lock serializes the debugfs files. */
static DEFINE_MUTEX(dti_lock);
static struct dma_buf *dti_dmabuf;
static struct dma_buf_attachment *dti_attach;
/* Under the dma-buf's resv lock. */
static unsigned int dti_invalidated;

/* The exporter moves or revokes the buffer: a mapping would be torn down. */
static void dti_invalidate(struct dma_buf_attachment *attach)
{
	dma_resv_assert_held(attach->dmabuf->resv);
	dti_invalidated++;
}

static const struct dma_buf_attach_ops dti_ops = {
	.allow_peer2peer = true,
	.invalidate_mappings = dti_invalidate,
};

static ssize_t dti_attach_write(struct file *file, const char __user *ubuf,
				size_t count, loff_t *ppos)
{
	struct dma_buf_attachment *attach;
	struct dma_buf *dmabuf;
	int fd, ret;

	ret = kstrtoint_from_user(ubuf, count, 0, &fd);
	if (ret)
		return ret;
	guard(mutex)(&dti_lock);
	if (dti_attach)
		return -EBUSY;
	dmabuf = dma_buf_get(fd);
	if (IS_ERR(dmabuf))
		return PTR_ERR(dmabuf);
	/* No attachment of ours yet: nothing else counts. */
	dti_invalidated = 0;
	attach = dma_buf_dynamic_attach(dmabuf, &dti_fdev->dev, &dti_ops, NULL);
	if (IS_ERR(attach)) {
		dma_buf_put(dmabuf);
		return PTR_ERR(attach);
	}
	dti_dmabuf = dmabuf;
	dti_attach = attach;
	return count;
}

static void dti_detach_locked(void)
{
	lockdep_assert_held(&dti_lock);
	dma_buf_detach(dti_dmabuf, dti_attach);
	dma_buf_put(dti_dmabuf);
	dti_attach = NULL;
	dti_dmabuf = NULL;
}

static ssize_t dti_detach_write(struct file *file, const char __user *ubuf,
				size_t count, loff_t *ppos)
{
	guard(mutex)(&dti_lock);
	if (!dti_attach)
		return -ENOENT;
	dti_detach_locked();
	return count;
}

static void dti_show_one(struct seq_file *s, const char *name, bool extended)
{
	u16 tag = 0;
	u8 ph = 0;
	int ret;

	ret = dma_buf_get_pci_tph(dti_dmabuf, extended, &tag, &ph);
	if (ret)
		seq_printf(s, "%s %d\n", name, ret);
	else
		seq_printf(s, "%s 0 0x%x %u\n", name, tag, ph);
}

static int dti_hint_show(struct seq_file *s, void *unused)
{
	guard(mutex)(&dti_lock);
	if (!dti_attach)
		return -ENOENT;
	dma_resv_lock(dti_dmabuf->resv, NULL);
	dti_show_one(s, "st", false);
	dti_show_one(s, "st_ext", true);
	seq_printf(s, "invalidated %u\n", dti_invalidated);
	dma_resv_unlock(dti_dmabuf->resv);
	return 0;
}

DEFINE_SHOW_ATTRIBUTE(dti_hint);

static const struct file_operations dti_attach_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = dti_attach_write,
};

static const struct file_operations dti_detach_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = dti_detach_write,
};

static int __init dti_init(void)
{
	dti_fdev = faux_device_create(KBUILD_MODNAME, NULL, NULL);
	if (!dti_fdev)
		return -ENODEV;
	dti_dir = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_file("attach", 0200, dti_dir, NULL, &dti_attach_fops);
	debugfs_create_file("hint", 0444, dti_dir, NULL, &dti_hint_fops);
	debugfs_create_file("detach", 0200, dti_dir, NULL, &dti_detach_fops);
	return 0;
}

static void __exit dti_exit(void)
{
	debugfs_remove_recursive(dti_dir);
	scoped_guard(mutex, &dti_lock)
		if (dti_attach)
			dti_detach_locked();
	faux_device_destroy(dti_fdev);
}

module_init(dti_init);
module_exit(dti_exit);

MODULE_DESCRIPTION("Test-only dma-buf importer reading PCIe TPH hints");
MODULE_LICENSE("GPL");
