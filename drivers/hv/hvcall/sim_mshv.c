// SPDX-License-Identifier: GPL-2.0
/*
 * The simulated /dev/mshv: test only, registered when mshv_hvcall runs the
 * simulated hypervisor (simulate=1). It is the partition provider of the
 * mshv-vfio bridge in QEMU, as the patched mshv_root is on a real host
 * (patches/linux-7.3/0002): the subset of the partition lifecycle that VMMs
 * send before they hand a VFIO device to a guest.
 *
 *   /dev/mshv      MSHV_CREATE_PARTITION (v1 and v2 structs, validated as
 *                  7.3's mshv_root does, in Rust: hvpt::mshv_uapi), backed
 *                  by a guest partition of the simulated hypervisor
 *   partition fd   MSHV_INITIALIZE_PARTITION, MSHV_CREATE_DEVICE,
 *                  MSHV_SET_GUEST_MEMORY (every region pinned and mapped in
 *                  the simulated partition's SLAT when it is created)
 *   device fd      MSHV_SET_DEVICE_ATTR and the "has" attribute ioctls
 *   partition ops  get/put/id, and for direct attach owner, pin_guest/
 *                  unpin_guest (unmapping guest RAM -EBUSY while pinned) and
 *                  guest_page
 *                  (patches/linux-7.3/0003)
 *
 * Every other ioctl is -ENOTTY. MSHV_CREATE_DEVICE and the device fd follow
 * the mshv_root patch line by line, so the bridge runs the same way under
 * both providers. Documentation/mshv-vfio-bridge.rst.
 */

#include <linux/errno.h>
#include <linux/printk.h>
#include <linux/types.h>

#include "mshv_hvcall.h"

#ifdef MSHV_PT_HAVE_MSHV_DEVICE

#include <linux/anon_inodes.h>
#include <linux/atomic.h>
#include <linux/bits.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mshv_device.h>
#include <linux/mutex.h>
#include <linux/refcount.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <uapi/linux/mshv.h>

/*
 * The largest region, in 4K pages (16 GiB): its page and PFN arrays stay
 * small enough for kvmalloc, and the simulator maps it in one call.
 * PAGE_SIZE is 4K (hvcall_shim.c asserts it), so pages are guest pages.
 */
#define SIM_MSHV_MAX_REGION_PAGES	BIT_ULL(22)

/* A guest memory region, its user pages pinned for as long as it exists. */
struct sim_mshv_region {
	struct list_head node;
	u64 gfn;
	u64 nr_pages;
	u64 uaddr;
	bool writable;
	struct page **pages;
};

struct sim_mshv_partition {
	refcount_t ref;
	/* The simulated hypervisor's partition id. */
	u64 id;
	/* Protects @initialized, @device, @pinned and changes to @regions. */
	struct mutex lock;
	bool initialized;
	/* The one device on this partition (the bridge), or NULL. */
	struct mshv_device *device;
	/* pin_guest() calls not undone: unmapping guest RAM is refused. */
	unsigned int pinned;
	/* Guest memory (struct sim_mshv_region); read under either lock. */
	struct list_head regions;
	/* Taken inside @lock to change @regions; alone by guest_page(). */
	spinlock_t regions_lock;
};

/* Partitions alive (their fds, or devices that hold them). */
static atomic_t sim_mshv_live = ATOMIC_INIT(0);
/* Guest memory pages pinned. */
static atomic64_t sim_mshv_pinned = ATOMIC64_INIT(0);

int mshv_hvcall_mshv_live(void)
{
	return atomic_read(&sim_mshv_live);
}

s64 mshv_hvcall_mshv_pinned(void)
{
	return atomic64_read(&sim_mshv_pinned);
}

static void *sim_mshv_partition_get(void *partition)
{
	struct sim_mshv_partition *pt = partition;

	return refcount_inc_not_zero(&pt->ref) ? pt : NULL;
}

static void sim_mshv_region_free(struct sim_mshv_region *rg)
{
	unpin_user_pages(rg->pages, rg->nr_pages);
	atomic64_sub(rg->nr_pages, &sim_mshv_pinned);
	kvfree(rg->pages);
	kfree(rg);
}

static void sim_mshv_partition_put(void *partition)
{
	struct sim_mshv_partition *pt = partition;
	struct sim_mshv_region *rg, *tmp;

	if (!refcount_dec_and_test(&pt->ref))
		return;
	/* The last reference: nothing can reach the partition any more. */
	WARN_ON(pt->device);
	/*
	 * The guest's memory is unpinned only once the hypervisor dropped the
	 * partition: a device still attached to it could reach the pages.
	 */
	if (mshv_hvcall_rs_mshv_destroy(pt->id) == 0) {
		list_for_each_entry_safe(rg, tmp, &pt->regions, node)
			sim_mshv_region_free(rg);
	}
	mutex_destroy(&pt->lock);
	kfree(pt);
	atomic_dec(&sim_mshv_live);
	module_put(THIS_MODULE);
}

static u64 sim_mshv_partition_id(void *partition)
{
	return ((struct sim_mshv_partition *)partition)->id;
}

/* Every region is pinned from its creation: only count, for the unmap rule. */
static int sim_mshv_partition_pin_guest(void *partition)
{
	struct sim_mshv_partition *pt = partition;

	mutex_lock(&pt->lock);
	pt->pinned++;
	mutex_unlock(&pt->lock);
	return 0;
}

static void sim_mshv_partition_unpin_guest(void *partition)
{
	struct sim_mshv_partition *pt = partition;

	mutex_lock(&pt->lock);
	if (!WARN_ON_ONCE(!pt->pinned))
		pt->pinned--;
	mutex_unlock(&pt->lock);
}

static int sim_mshv_partition_guest_page(void *partition, u64 gfn, u64 *pfn,
					 bool *writable)
{
	struct sim_mshv_partition *pt = partition;
	struct sim_mshv_region *rg;
	int ret = -ENOENT;

	spin_lock(&pt->regions_lock);
	list_for_each_entry(rg, &pt->regions, node) {
		if (gfn < rg->gfn || gfn - rg->gfn >= rg->nr_pages)
			continue;
		*pfn = page_to_pfn(rg->pages[gfn - rg->gfn]);
		*writable = rg->writable;
		ret = 0;
		break;
	}
	spin_unlock(&pt->regions_lock);
	return ret;
}

static const struct mshv_partition_ops sim_mshv_partition_ops = {
	.owner = THIS_MODULE,
	.get = sim_mshv_partition_get,
	.put = sim_mshv_partition_put,
	.id = sim_mshv_partition_id,
	.pin_guest = sim_mshv_partition_pin_guest,
	.unpin_guest = sim_mshv_partition_unpin_guest,
	.guest_page = sim_mshv_partition_guest_page,
};

static long sim_mshv_device_ioctl(struct file *filp, unsigned int ioctl,
				  unsigned long arg)
{
	struct mshv_device *dev = filp->private_data;
	struct mshv_device_attr attr;

	switch (ioctl) {
	case MSHV_SET_DEVICE_ATTR:
		if (copy_from_user(&attr, (void __user *)arg, sizeof(attr)))
			return -EFAULT;
		return dev->type->set_attr ? dev->type->set_attr(dev, &attr) : -EPERM;
	case MSHV_HAS_DEVICE_ATTR:
	case MSHV_HAS_DEVICE_ATTR2:
		if (copy_from_user(&attr, (void __user *)arg, sizeof(attr)))
			return -EFAULT;
		return dev->type->has_attr ? dev->type->has_attr(dev, &attr) : -EPERM;
	default:
		return -ENOTTY;
	}
}

static int sim_mshv_device_release(struct inode *inode, struct file *filp)
{
	struct mshv_device *dev = filp->private_data;
	struct sim_mshv_partition *pt = dev->partition;

	/* The type undoes all it did, VFIO file references included. */
	dev->type->release(dev);
	mutex_lock(&pt->lock);
	pt->device = NULL;
	mutex_unlock(&pt->lock);
	kfree(dev);
	symbol_put(mshv_vfio_device_type);
	sim_mshv_partition_put(pt);
	return 0;
}

static const struct file_operations sim_mshv_device_fops = {
	.owner = THIS_MODULE,
	.release = sim_mshv_device_release,
	.unlocked_ioctl = sim_mshv_device_ioctl,
	.llseek = noop_llseek,
};

/*
 * MSHV_CREATE_DEVICE, as in the mshv_root patch: no partition lock across a
 * user copy, and the fd is installed only after the result reached user
 * space, so a bad pointer leaves no fd and no device.
 */
static long sim_mshv_create_device(struct sim_mshv_partition *pt,
				   void __user *uarg)
{
	const struct mshv_device_type *type;
	struct mshv_create_device cd;
	struct mshv_device *dev;
	struct file *file;
	long ret;
	int fd;

	if (copy_from_user(&cd, uarg, sizeof(cd)))
		return -EFAULT;
	if (cd.type != MSHV_DEV_TYPE_VFIO)
		return -ENODEV;
	if (cd.flags & ~MSHV_CREATE_DEVICE_TEST)
		return -EINVAL;
	type = symbol_get(mshv_vfio_device_type);
	if (!type)
		return -ENODEV;
	if (cd.flags & MSHV_CREATE_DEVICE_TEST) {
		ret = 0;
		goto put_type;
	}
	if (!type->create || !type->release) {
		ret = -EINVAL;
		goto put_type;
	}
	dev = kzalloc_obj(*dev);
	if (!dev) {
		ret = -ENOMEM;
		goto put_type;
	}
	/* The caller's fd holds the partition: this cannot fail. */
	refcount_inc(&pt->ref);
	dev->partition = pt;
	dev->partition_ops = &sim_mshv_partition_ops;
	dev->type = type;

	if (mutex_lock_killable(&pt->lock)) {
		ret = -EINTR;
		goto free_dev;
	}
	if (pt->device) {
		mutex_unlock(&pt->lock);
		ret = -EBUSY;
		goto free_dev;
	}
	pt->device = dev;
	mutex_unlock(&pt->lock);

	ret = type->create(dev);
	if (ret)
		goto unlist;
	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		ret = fd;
		goto release;
	}
	file = anon_inode_getfile(type->name, &sim_mshv_device_fops, dev, O_RDWR);
	if (IS_ERR(file)) {
		ret = PTR_ERR(file);
		put_unused_fd(fd);
		goto release;
	}
	cd.fd = fd;
	if (copy_to_user(uarg, &cd, sizeof(cd))) {
		put_unused_fd(fd);
		/* The file's release frees the device. */
		fput(file);
		return -EFAULT;
	}
	fd_install(fd, file);
	return 0;

release:
	type->release(dev);
unlist:
	mutex_lock(&pt->lock);
	pt->device = NULL;
	mutex_unlock(&pt->lock);
free_dev:
	sim_mshv_partition_put(pt);
	kfree(dev);
put_type:
	symbol_put(mshv_vfio_device_type);
	return ret;
}

/* Pins @rg's user pages and maps them in the SLAT; 0 or -errno, nothing kept. */
static long sim_mshv_region_map(struct sim_mshv_partition *pt,
				struct sim_mshv_region *rg, bool writable)
{
	unsigned int gup = FOLL_LONGTERM | (writable ? FOLL_WRITE : 0);
	u64 done = 0, i;
	u64 *pfns;
	long ret;

	rg->pages = kvmalloc_array(rg->nr_pages, sizeof(*rg->pages),
				   GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!rg->pages)
		return -ENOMEM;
	pfns = kvmalloc_array(rg->nr_pages, sizeof(*pfns), GFP_KERNEL | __GFP_NOWARN);
	if (!pfns) {
		ret = -ENOMEM;
		goto free_pages;
	}
	while (done < rg->nr_pages) {
		int n = min_t(u64, rg->nr_pages - done, INT_MAX / PAGE_SIZE);

		ret = pin_user_pages_fast(rg->uaddr + done * PAGE_SIZE, n, gup,
					  rg->pages + done);
		if (ret <= 0) {
			ret = ret ? ret : -EFAULT;
			goto unpin;
		}
		done += ret;
	}
	for (i = 0; i < rg->nr_pages; i++)
		pfns[i] = page_to_pfn(rg->pages[i]);
	ret = mshv_hvcall_rs_mshv_map_guest(pt->id, rg->gfn, pfns, rg->nr_pages,
					    writable);
	kvfree(pfns);
	if (!ret) {
		atomic64_add(rg->nr_pages, &sim_mshv_pinned);
		return 0;
	}
	pfns = NULL;
unpin:
	unpin_user_pages(rg->pages, done);
	kvfree(pfns);
free_pages:
	kvfree(rg->pages);
	rg->pages = NULL;
	return ret;
}

/*
 * MSHV_SET_GUEST_MEMORY, with 7.3's rules (validated in Rust): regions do
 * not overlap in guest space (-EEXIST), and an unmap names a region exactly
 * (-ENOENT for no region at that guest page, -EINVAL for another size or
 * address). Unlike 7.3's default of movable regions, every region is pinned
 * and mapped at once, as 7.3 does for encrypted partitions.
 */
static long sim_mshv_set_memory(struct sim_mshv_partition *pt, void __user *uarg)
{
	struct mshv_user_mem_region mem;
	struct sim_mshv_region *rg;
	bool unmap, writable;
	u64 gfn, nr_pages;
	long ret;

	if (copy_from_user(&mem, uarg, sizeof(mem)))
		return -EFAULT;
	ret = mshv_hvcall_rs_mshv_memory_check(&mem, &gfn, &nr_pages, &unmap,
					       &writable);
	if (ret)
		return ret;
	if (nr_pages > SIM_MSHV_MAX_REGION_PAGES)
		return -E2BIG;
	/* Pinning may wait on user faults: let a fatal signal end the wait. */
	if (mutex_lock_killable(&pt->lock))
		return -EINTR;
	if (unmap) {
		/* As the mshv_root patch: a direct-attached device may use it. */
		ret = -EBUSY;
		if (pt->pinned)
			goto unlock;
		ret = -ENOENT;
		list_for_each_entry(rg, &pt->regions, node) {
			if (gfn < rg->gfn || gfn >= rg->gfn + rg->nr_pages)
				continue;
			if (rg->gfn != gfn || rg->nr_pages != nr_pages ||
			    rg->uaddr != mem.userspace_addr) {
				ret = -EINVAL;
				break;
			}
			mshv_hvcall_rs_mshv_unmap_guest(pt->id, gfn, nr_pages);
			spin_lock(&pt->regions_lock);
			list_del(&rg->node);
			spin_unlock(&pt->regions_lock);
			sim_mshv_region_free(rg);
			ret = 0;
			break;
		}
		goto unlock;
	}
	ret = -EEXIST;
	list_for_each_entry(rg, &pt->regions, node)
		if (gfn < rg->gfn + rg->nr_pages && rg->gfn < gfn + nr_pages)
			goto unlock;
	ret = -EINVAL;
	if (!access_ok((void __user *)mem.userspace_addr, mem.size))
		goto unlock;
	ret = -ENOMEM;
	rg = kzalloc_obj(*rg);
	if (!rg)
		goto unlock;
	rg->gfn = gfn;
	rg->nr_pages = nr_pages;
	rg->uaddr = mem.userspace_addr;
	rg->writable = writable;
	ret = sim_mshv_region_map(pt, rg, writable);
	if (ret) {
		kfree(rg);
		goto unlock;
	}
	spin_lock(&pt->regions_lock);
	list_add_tail(&rg->node, &pt->regions);
	spin_unlock(&pt->regions_lock);
unlock:
	mutex_unlock(&pt->lock);
	return ret;
}

static long sim_mshv_partition_ioctl(struct file *filp, unsigned int ioctl,
				     unsigned long arg)
{
	struct sim_mshv_partition *pt = filp->private_data;

	switch (ioctl) {
	case MSHV_CREATE_DEVICE:
		return sim_mshv_create_device(pt, (void __user *)arg);
	case MSHV_SET_GUEST_MEMORY:
		return sim_mshv_set_memory(pt, (void __user *)arg);
	case MSHV_INITIALIZE_PARTITION:
		/* As mshv_root: initializing twice is not an error. */
		if (mutex_lock_killable(&pt->lock))
			return -EINTR;
		pt->initialized = true;
		mutex_unlock(&pt->lock);
		return 0;
	default:
		return -ENOTTY;
	}
}

static int sim_mshv_partition_release(struct inode *inode, struct file *filp)
{
	sim_mshv_partition_put(filp->private_data);
	return 0;
}

static const struct file_operations sim_mshv_partition_fops = {
	.owner = THIS_MODULE,
	.release = sim_mshv_partition_release,
	.unlocked_ioctl = sim_mshv_partition_ioctl,
	.llseek = noop_llseek,
};

static long sim_mshv_create_partition(void __user *uarg)
{
	struct sim_mshv_partition *pt;
	int ret;

	pt = kzalloc_obj(*pt);
	if (!pt)
		return -ENOMEM;
	/*
	 * Counted before the simulator creates it: a simulator reset checks
	 * the count under the simulator's lock, so it either sees this one or
	 * runs wholly before the partition exists.
	 */
	atomic_inc(&sim_mshv_live);
	ret = mshv_hvcall_rs_mshv_create(uarg, &pt->id);
	if (ret) {
		atomic_dec(&sim_mshv_live);
		kfree(pt);
		return ret;
	}
	refcount_set(&pt->ref, 1);
	mutex_init(&pt->lock);
	INIT_LIST_HEAD(&pt->regions);
	spin_lock_init(&pt->regions_lock);
	/* Each partition holds the module: the simulator outlives it. */
	__module_get(THIS_MODULE);
	ret = anon_inode_getfd("mshv_partition", &sim_mshv_partition_fops, pt,
			       O_RDWR | O_CLOEXEC);
	if (ret < 0)
		sim_mshv_partition_put(pt);
	return ret;
}

static long sim_mshv_dev_ioctl(struct file *filp, unsigned int ioctl,
			       unsigned long arg)
{
	if (ioctl == MSHV_CREATE_PARTITION)
		return sim_mshv_create_partition((void __user *)arg);
	return -ENOTTY;
}

static const struct file_operations sim_mshv_dev_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = sim_mshv_dev_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice sim_mshv_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "mshv",
	.fops = &sim_mshv_dev_fops,
	.mode = 0600,
};

int mshv_hvcall_mshv_register(void)
{
	return misc_register(&sim_mshv_dev);
}

void mshv_hvcall_mshv_unregister(void)
{
	misc_deregister(&sim_mshv_dev);
}

#else /* no patches/linux-7.3/0002 in this kernel */

int mshv_hvcall_mshv_live(void)
{
	return 0;
}

s64 mshv_hvcall_mshv_pinned(void)
{
	return 0;
}

int mshv_hvcall_mshv_register(void)
{
	pr_info("no simulated /dev/mshv: the kernel lacks linux/mshv_device.h (patches/linux-7.3/0002)\n");
	return 0;
}

void mshv_hvcall_mshv_unregister(void)
{
}

#endif
