// SPDX-License-Identifier: GPL-2.0
/*
 * vfio_pci_tph: a vfio-pci variant driver that adds PCIe TLP Processing
 * Hints (TPH) to a device owned through VFIO. This file holds what only C
 * can build: the pci_driver and vfio_device_ops tables over vfio-pci-core,
 * the locking around the feature calls, and thin calls into the PCI core's
 * TPH helpers (drivers/pci/tph.c) and ACPI. The feature logic and the TPH
 * state are Rust (vfio_pci_tph_main.rs). Documentation/vfio-pci-tph.rst.
 */

#include <linux/acpi.h>
#include <linux/bitfield.h>
#include <linux/cpumask.h>
#include <linux/dma-buf.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/pci-acpi.h>
#include <linux/pci-tph.h>
#include <linux/pm_runtime.h>
#include <linux/sched.h>
#include <linux/vfio.h>
#include <linux/vfio_pci_core.h>

#include "vfio_pci_tph.h"
#include "../../../../include/uapi/linux/vfio_pci_tph.h"

/* The PCI firmware _DSM (drivers/pci/pci-acpi.c does not export its copy). */
static const guid_t vpt_dsm_guid =
	GUID_INIT(0xE5C937D0, 0x3553, 0x4D7A,
		  0x91, 0x17, 0xEA, 0x4D, 0x19, 0xC3, 0x43, 0x4D);
/* Its revision and function for the steering tags of a processor. */
#define VPT_DSM_REV	7
#define VPT_DSM_FN_ST	0xF

struct vpt_device {
	struct vfio_pci_core_device core;
	/* The Rust state (vpt_rs_new); NULL for a device without TPH. */
	void *state;
};

static struct vpt_device *vpt_of(struct vfio_device *core_vdev)
{
	return container_of(core_vdev, struct vpt_device, core.vdev);
}

/* The ACPI object tph.c asks for a tag: the host bridge above the Root Port. */
static acpi_handle vpt_dsm_handle(struct pci_dev *pdev)
{
	struct pci_dev *rp = pcie_find_root_port(pdev);

	if (!rp || !rp->bus || !rp->bus->bridge)
		return NULL;
	return ACPI_HANDLE(rp->bus->bridge);
}

void vpt_facts(struct pci_dev *pdev, struct vpt_facts *f)
{
	struct pci_dev *rp = pcie_find_root_port(pdev);
	acpi_handle h = vpt_dsm_handle(pdev);
	int msix = pci_msix_vec_count(pdev);

	memset(f, 0, sizeof(*f));
	if (pdev->tph_cap)
		pci_read_config_dword(pdev, pdev->tph_cap + PCI_TPH_CAP, &f->cap);
	if (rp)
		pcie_capability_read_dword(rp, PCI_EXP_DEVCAP2, &f->rp_devcap2);
	pcie_capability_read_dword(pdev, PCI_EXP_DEVCAP2, &f->devcap2);
	f->msix_size = msix > 0 ? msix : 0;
	f->pos = pdev->tph_cap;
	f->rc_end = pci_pcie_type(pdev) == PCI_EXP_TYPE_RC_END;
	f->cpu_st = h && acpi_check_dsm(h, &vpt_dsm_guid, VPT_DSM_REV,
					BIT(VPT_DSM_FN_ST));
}

int vpt_enable(struct pci_dev *pdev, u8 mode, u8 *req_type)
{
	int ret = pcie_enable_tph(pdev, mode);

	*req_type = ret ? 0 : pdev->tph_req_type;
	return ret;
}

void vpt_disable(struct pci_dev *pdev)
{
	pcie_disable_tph(pdev);
}

int vpt_set_st(struct pci_dev *pdev, u16 index, u16 tag)
{
	bool msix = pcie_tph_get_st_table_loc(pdev) ==
		    FIELD_GET(PCI_TPH_CAP_LOC_MASK, PCI_TPH_LOC_MSIX);
	u16 cmd = 0;
	int ret;

	/* The MSI-X table is memory space: decode on, as VFIO does for it. */
	if (msix) {
		pci_read_config_word(pdev, PCI_COMMAND, &cmd);
		if (!(cmd & PCI_COMMAND_MEMORY))
			pci_write_config_word(pdev, PCI_COMMAND, cmd | PCI_COMMAND_MEMORY);
	}
	ret = pcie_tph_set_st_entry(pdev, index, tag);
	if (msix && !(cmd & PCI_COMMAND_MEMORY))
		pci_write_config_word(pdev, PCI_COMMAND, cmd);
	/* A config write's PCIBIOS code comes back as it is. */
	return ret > 0 ? pcibios_err_to_errno(ret) : ret;
}

/* The table in the capability, written directly: tph.c only writes it while TPH is enabled. */
int vpt_table_write(struct pci_dev *pdev, u16 index, u16 tag)
{
	return pcibios_err_to_errno(pci_write_config_word(pdev,
			pdev->tph_cap + PCI_TPH_BASE_SIZEOF + 2 * index, tag));
}

int vpt_table_read(struct pci_dev *pdev, u16 index, u16 *tag)
{
	return pcibios_err_to_errno(pci_read_config_word(pdev,
			pdev->tph_cap + PCI_TPH_BASE_SIZEOF + 2 * index, tag));
}

bool vpt_vector(struct pci_dev *pdev, u16 index)
{
	return pdev->msix_enabled && pci_irq_vector(pdev, index) >= 0;
}

/*
 * The _DSM answer for @cpu, as tph.c asks for it; but all of it: tph.c's
 * pcie_tph_get_cpu_st() keeps one tag, picked by the enabled requester type,
 * and reports an invalid one as tag 0.
 */
int vpt_cpu_st_info(struct pci_dev *pdev, u32 cpu, u64 *info)
{
	union acpi_object args[3], in, *out;
	acpi_handle h;
	u32 uid;
	int ret;

	if (cpu >= nr_cpu_ids || !cpu_possible(cpu))
		return -EINVAL;
	/* Only a CPU the caller may run on. */
	if (!cpumask_test_cpu(cpu, current->cpus_ptr))
		return -EPERM;
	ret = acpi_get_cpu_uid(cpu, &uid);
	if (ret)
		return ret;
	h = vpt_dsm_handle(pdev);
	if (!h)
		return -EOPNOTSUPP;

	args[0].integer.type = ACPI_TYPE_INTEGER;
	args[0].integer.value = 0;	/* feature: processor cache tags */
	args[1].integer.type = ACPI_TYPE_INTEGER;
	args[1].integer.value = uid;
	args[2].integer.type = ACPI_TYPE_INTEGER;
	args[2].integer.value = 0;
	in.type = ACPI_TYPE_PACKAGE;
	in.package.count = ARRAY_SIZE(args);
	in.package.elements = args;

	out = acpi_evaluate_dsm_typed(h, &vpt_dsm_guid, VPT_DSM_REV,
				      VPT_DSM_FN_ST, &in, ACPI_TYPE_BUFFER);
	if (!out)
		return -EIO;
	if (out->buffer.length < sizeof(*info)) {
		ACPI_FREE(out);
		return -EIO;
	}
	memcpy(info, out->buffer.pointer, sizeof(*info));
	ACPI_FREE(out);
	return 0;
}

/* Serializes the feature calls with VFIO's resets and interrupt setup. */
static void vpt_lock(struct vfio_pci_core_device *vdev)
	__acquires(&vdev->igate) __acquires(&vdev->memory_lock)
{
	/* VFIO's order: igate, then memory_lock (vfio_pci_intrs.c). */
	mutex_lock(&vdev->igate);
	down_write(&vdev->memory_lock);
}

static void vpt_unlock(struct vfio_pci_core_device *vdev)
	__releases(&vdev->memory_lock) __releases(&vdev->igate)
{
	up_write(&vdev->memory_lock);
	mutex_unlock(&vdev->igate);
}

/* The largest feature payload: an ST or CPU_ST call of the most entries. */
#define VPT_MAX_DATA	(sizeof(struct vfio_pci_tph_st) + \
			 VFIO_PCI_TPH_MAX_ENTRIES * sizeof(struct vfio_pci_tph_st_entry))

/*
 * Calls that change the device run under VFIO's locks, in D0, and not
 * during a reset VFIO did not start (the Rust part refuses those).
 */
static int vpt_changing(struct vpt_device *vpt)
{
	if (vpt->core.pdev->current_state != PCI_D0)
		return -EBUSY;
	return 0;
}

#if defined(VFIO_PCI_CORE_DMA_BUF_TPH) && IS_ENABLED(CONFIG_VFIO_PCI_DMABUF)
/*
 * VFIO_DEVICE_FEATURE_PCI_TPH_DMA_BUF: the hint other devices' writes into
 * one of this device's dma-bufs should carry. The device is their
 * completer: what it may be given follows its own TPH Completer Supported
 * field, judged in Rust; the dma-buf must be one of this device's
 * (vfio-pci-core checks, under memory_lock).
 */
static int vpt_dma_buf_tph(struct vpt_device *vpt, u32 flags,
			   void __user *arg, size_t argsz)
{
	struct vfio_pci_core_device *vdev = &vpt->core;
	struct vfio_pci_tph_dma_buf req;
	struct vfio_pci_dma_buf_tph tph;
	struct vpt_dma_buf_hint hint;
	struct dma_buf *dmabuf;
	u32 devcap2 = 0;
	int ret;

	BUILD_BUG_ON(sizeof(req) != 12);
	BUILD_BUG_ON(sizeof(hint) != 6);
	pcie_capability_read_dword(vdev->pdev, PCI_EXP_DEVCAP2, &devcap2);
	ret = vpt_rs_dma_buf(devcap2, NULL, NULL);
	if (ret)
		return ret;
	ret = vfio_check_feature(flags, argsz, VFIO_DEVICE_FEATURE_SET, sizeof(req));
	if (ret != 1)
		return ret;
	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	ret = vpt_rs_dma_buf(devcap2, (const u8 *)&req, &hint);
	if (ret)
		return ret;

	tph = (struct vfio_pci_dma_buf_tph) {
		.steering_tag_ext = hint.st_ext,
		.steering_tag = hint.st,
		.ph = hint.ph,
		.st_valid = hint.st_valid,
		.st_ext_valid = hint.st_ext_valid,
	};
	dmabuf = dma_buf_get(req.dmabuf_fd);
	if (IS_ERR(dmabuf))
		return PTR_ERR(dmabuf);
	/* A revocation waits for importers to unmap, under memory_lock. */
	ret = down_read_killable(&vdev->memory_lock);
	if (!ret) {
		ret = vfio_pci_core_dma_buf_set_tph(vdev, dmabuf, &tph);
		up_read(&vdev->memory_lock);
	}
	/* After the unlock: releasing the dma-buf takes memory_lock. */
	dma_buf_put(dmabuf);
	return ret;
}
#endif

static int vpt_device_feature(struct vfio_device *core_vdev, u32 flags,
			      void __user *arg, size_t argsz)
{
	struct vpt_device *vpt = vpt_of(core_vdev);
	u32 index = flags & VFIO_DEVICE_FEATURE_MASK;
	bool changes = false, in = true;
	size_t minsz, len;
	void *buf;
	u32 ops;
	int ret;

	switch (index) {
	case VFIO_DEVICE_FEATURE_PCI_TPH_INFO:
		ops = VFIO_DEVICE_FEATURE_GET;
		minsz = sizeof(struct vfio_pci_tph_info);
		in = false;
		break;
	case VFIO_DEVICE_FEATURE_PCI_TPH_CTRL:
		ops = VFIO_DEVICE_FEATURE_SET;
		minsz = sizeof(struct vfio_pci_tph_ctrl);
		changes = true;
		break;
	case VFIO_DEVICE_FEATURE_PCI_TPH_CPU_ST:
		ops = VFIO_DEVICE_FEATURE_GET;
		minsz = sizeof(struct vfio_pci_tph_cpu_st);
		break;
	case VFIO_DEVICE_FEATURE_PCI_TPH_ST:
		ops = VFIO_DEVICE_FEATURE_SET;
		minsz = sizeof(struct vfio_pci_tph_st);
		changes = true;
		break;
#if defined(VFIO_PCI_CORE_DMA_BUF_TPH) && IS_ENABLED(CONFIG_VFIO_PCI_DMABUF)
	case VFIO_DEVICE_FEATURE_PCI_TPH_DMA_BUF:
		return vpt_dma_buf_tph(vpt, flags, arg, argsz);
#endif
	default:
		return vfio_pci_core_ioctl_feature(core_vdev, flags, arg, argsz);
	}
	if (!vpt->state)
		return -ENOTTY;
	ret = vfio_check_feature(flags, argsz, ops, minsz);
	if (ret != 1)
		return ret;

	/*
	 * User memory is copied in and out with no lock held: a fault on it
	 * may need memory_lock (this device's own BAR mmap).
	 */
	len = min(argsz, VPT_MAX_DATA);
	buf = kvzalloc(len, GFP_KERNEL_ACCOUNT);
	if (!buf)
		return -ENOMEM;
	if (in && copy_from_user(buf, arg, len)) {
		ret = -EFAULT;
		goto out;
	}
	if (changes) {
		vpt_lock(&vpt->core);
		ret = vpt_changing(vpt);
		if (!ret)
			ret = vpt_rs_feature(vpt->state, vpt->core.pdev, index, buf, len);
		vpt_unlock(&vpt->core);
	} else {
		ret = vpt_rs_feature(vpt->state, vpt->core.pdev, index, buf, len);
	}
	/* A positive return is how many bytes go back to user space. */
	if (ret > 0)
		ret = copy_to_user(arg, buf, ret) ? -EFAULT : 0;
out:
	kvfree(buf);
	return ret;
}

/* Whether [@off, @off + @len) of config space meets the TPH capability's [@lo, @hi). */
static bool vpt_cfg_meets(struct vpt_device *vpt, loff_t pos, size_t len,
			  u16 lo, u16 hi, u64 *off)
{
	u16 cap = vpt->core.pdev->tph_cap;

	if (!vpt->state || VFIO_PCI_OFFSET_TO_INDEX(pos) != VFIO_PCI_CONFIG_REGION_INDEX)
		return false;
	*off = pos & VFIO_PCI_OFFSET_MASK;
	return *off < cap + hi && *off + len > cap + lo;
}

static ssize_t vpt_read(struct vfio_device *core_vdev, char __user *buf,
			size_t count, loff_t *ppos)
{
	struct vpt_device *vpt = vpt_of(core_vdev);
	loff_t pos = *ppos;
	ssize_t ret;
	u64 off;
	int err;

	ret = vfio_pci_core_read(core_vdev, buf, count, ppos);
	/* The capability and control registers: what this caller may do, and did. */
	if (ret > 0 && vpt_cfg_meets(vpt, pos, ret, PCI_TPH_CAP, PCI_TPH_CTRL + 4, &off)) {
		err = vpt_rs_cfg_read(vpt->state, off, buf, ret);
		if (err)
			return err;
	}
	return ret;
}

static ssize_t vpt_write(struct vfio_device *core_vdev, const char __user *buf,
			 size_t count, loff_t *ppos)
{
	struct vpt_device *vpt = vpt_of(core_vdev);
	struct pci_dev *pdev = vpt->core.pdev;
	u16 cap = pdev->tph_cap;
	u8 data[4];
	ssize_t ret;
	u64 off;

	/*
	 * The control register and the table go through the same checks as
	 * the features; a capability hidden from the user stays read-only as
	 * vfio-pci-core has it.
	 */
	if (!vpt_cfg_meets(vpt, *ppos, count, PCI_TPH_CTRL, 0xffff, &off) ||
	    !vpt_rs_usable(vpt->state))
		return vfio_pci_core_write(core_vdev, buf, count, ppos);
	if (off < cap || off + count > cap + vpt_rs_cfg_size(vpt->state) ||
	    count > sizeof(data))
		return -EINVAL;
	if (copy_from_user(data, buf, count))
		return -EFAULT;

	/* As vfio_pci_core_write(): the device awake, before any lock. */
	ret = pm_runtime_resume_and_get(&pdev->dev);
	if (ret)
		return ret;
	vpt_lock(&vpt->core);
	ret = vpt_changing(vpt);
	if (!ret)
		ret = vpt_rs_cfg_write(vpt->state, pdev, off - cap, data, count);
	vpt_unlock(&vpt->core);
	pm_runtime_put(&pdev->dev);
	if (ret >= 0)
		*ppos += count;
	return ret;
}

/*
 * A device TPH cannot be used on (no Root Port that completes TPH requests,
 * reserved table location, no mode): the capability leaves the chain user
 * space walks, as vfio-pci-core hides a capability it does not know. Runs
 * after vfio-pci-core built its virtual config space for this open.
 */
static void vpt_hide_cap(struct vpt_device *vpt)
{
	u8 *vconfig = vpt->core.vconfig;
	u16 cap = vpt->core.pdev->tph_cap, pos = PCI_CFG_SPACE_SIZE;
	int loops = (PCI_CFG_SPACE_EXP_SIZE - PCI_CFG_SPACE_SIZE) / PCI_CAP_SIZEOF;
	__le32 *hdr;
	u32 next;

	if (!vpt->state || vpt_rs_usable(vpt->state))
		return;
	next = PCI_EXT_CAP_NEXT(le32_to_cpup((__le32 *)&vconfig[cap]));
	if (cap == PCI_CFG_SPACE_SIZE) {
		/* The first in the chain anchors it: no id, the same next. */
		hdr = (__le32 *)&vconfig[cap];
		*hdr = cpu_to_le32(next << 20);
		return;
	}
	while (loops-- && pos >= PCI_CFG_SPACE_SIZE) {
		hdr = (__le32 *)&vconfig[pos];
		if (PCI_EXT_CAP_NEXT(le32_to_cpup(hdr)) == cap) {
			*hdr &= cpu_to_le32(~(0xffcU << 20));
			*hdr |= cpu_to_le32(next << 20);
			return;
		}
		pos = PCI_EXT_CAP_NEXT(le32_to_cpup(hdr));
	}
}

static int vpt_init_dev(struct vfio_device *core_vdev)
{
	struct vpt_device *vpt = vpt_of(core_vdev);
	int ret;

	ret = vfio_pci_core_init_dev(core_vdev);
	if (ret)
		return ret;
	if (!vpt->core.pdev->tph_cap)
		return 0;
	ret = vpt_rs_new(vpt->core.pdev, &vpt->state);
	if (ret)
		vfio_pci_core_release_dev(core_vdev);
	return ret;
}

static void vpt_release_dev(struct vfio_device *core_vdev)
{
	struct vpt_device *vpt = vpt_of(core_vdev);

	vpt_rs_free(vpt->state);
	vpt->state = NULL;
	vfio_pci_core_release_dev(core_vdev);
}

/* TPH off and the table as at bind: on open, close and before a reset. */
static void vpt_quiesce(struct vpt_device *vpt)
{
	if (vpt->state)
		vpt_rs_quiesce(vpt->state, vpt->core.pdev);
}

static int vpt_open_device(struct vfio_device *core_vdev)
{
	struct vpt_device *vpt = vpt_of(core_vdev);
	int ret;

	ret = vfio_pci_core_enable(&vpt->core);
	if (ret)
		return ret;
	vpt_quiesce(vpt);
	vpt_hide_cap(vpt);
	vfio_pci_core_finish_enable(&vpt->core);
	return 0;
}

static void vpt_close_device(struct vfio_device *core_vdev)
{
	struct vpt_device *vpt = vpt_of(core_vdev);

	/*
	 * Before the core restores the state it saved at open: with TPH still
	 * enabled, pci_restore_state() would write back that state's TPH
	 * control (off) behind tph.c's back.
	 */
	pm_runtime_get_sync(&vpt->core.pdev->dev);
	vpt_quiesce(vpt);
	pm_runtime_put_noidle(&vpt->core.pdev->dev);
	vfio_pci_core_close_device(core_vdev);
}

static const struct vfio_device_ops vpt_ops = {
	.name		= "vfio-pci-tph",
	.init		= vpt_init_dev,
	.release	= vpt_release_dev,
	.open_device	= vpt_open_device,
	.close_device	= vpt_close_device,
	.ioctl		= vfio_pci_core_ioctl,
	.get_region_info_caps = vfio_pci_ioctl_get_region_info,
	.device_feature = vpt_device_feature,
	.read		= vpt_read,
	.write		= vpt_write,
	.mmap		= vfio_pci_core_mmap,
	.request	= vfio_pci_core_request,
	.match		= vfio_pci_core_match,
	.match_token_uuid = vfio_pci_core_match_token_uuid,
	.bind_iommufd	= vfio_iommufd_physical_bind,
	.unbind_iommufd	= vfio_iommufd_physical_unbind,
	.attach_ioas	= vfio_iommufd_physical_attach_ioas,
	.detach_ioas	= vfio_iommufd_physical_detach_ioas,
	.pasid_attach_ioas	= vfio_iommufd_physical_pasid_attach_ioas,
	.pasid_detach_ioas	= vfio_iommufd_physical_pasid_detach_ioas,
};

static const struct vfio_pci_device_ops vpt_dev_ops = {
	.get_dmabuf_phys = vfio_pci_core_get_dmabuf_phys,
};

static int vpt_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct vpt_device *vpt;
	int ret;

	vpt = vfio_alloc_device(vpt_device, core.vdev, &pdev->dev, &vpt_ops);
	if (IS_ERR(vpt))
		return PTR_ERR(vpt);

	dev_set_drvdata(&pdev->dev, &vpt->core);
	vpt->core.pci_ops = &vpt_dev_ops;
	ret = vfio_pci_core_register_device(&vpt->core);
	if (ret)
		vfio_put_device(&vpt->core.vdev);
	return ret;
}

static void vpt_remove(struct pci_dev *pdev)
{
	struct vfio_pci_core_device *vdev = dev_get_drvdata(&pdev->dev);

	/* VFIO closed the device first (vpt_close_device). */
	vfio_pci_core_unregister_device(vdev);
	vfio_put_device(&vdev->vdev);
}

/*
 * Any reset of the device (VFIO's own, with memory_lock held; sysfs; AER)
 * leaves TPH off and the table as at bind: the device's state no longer
 * matches what the user set, so nothing of it survives.
 */
static void vpt_reset_prepare(struct pci_dev *pdev)
{
	struct vfio_pci_core_device *vdev = dev_get_drvdata(&pdev->dev);
	struct vpt_device *vpt = container_of(vdev, struct vpt_device, core);

	if (vpt->state)
		vpt_rs_reset(vpt->state, pdev, false);
}

static void vpt_reset_done(struct pci_dev *pdev)
{
	struct vfio_pci_core_device *vdev = dev_get_drvdata(&pdev->dev);
	struct vpt_device *vpt = container_of(vdev, struct vpt_device, core);

	/* The reset cleared the table: put the bind-time values back. */
	if (vpt->state)
		vpt_rs_reset(vpt->state, pdev, true);
}

static const struct pci_error_handlers vpt_err_handlers = {
	.error_detected	= vfio_pci_core_aer_err_detected,
	.reset_prepare	= vpt_reset_prepare,
	.reset_done	= vpt_reset_done,
};

static const struct pci_device_id vpt_table[] = {
	/* Bound explicitly, as vfio-pci: driver_override or new_id. */
	{ PCI_DRIVER_OVERRIDE_DEVICE_VFIO(PCI_ANY_ID, PCI_ANY_ID) },
	{}
};
MODULE_DEVICE_TABLE(pci, vpt_table);
/* dma_buf_get() and dma_buf_put(). */
MODULE_IMPORT_NS("DMA_BUF");

static struct pci_driver vpt_driver = {
	.name			= "vfio-pci-tph",
	.id_table		= vpt_table,
	.probe			= vpt_probe,
	.remove			= vpt_remove,
	.err_handler		= &vpt_err_handlers,
	.driver_managed_dma	= true,
};

int vpt_register(void)
{
	return pci_register_driver(&vpt_driver);
}

void vpt_unregister(void)
{
	pci_unregister_driver(&vpt_driver);
}
