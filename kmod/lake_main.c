// SPDX-License-Identifier: GPL-2.0
/*
 * lake.ko: the CUDA Driver API for kernel code, remoted to lakeD.
 *
 * /dev/lake is how lakeD attaches (LAKE_IOC_ATTACH), maps the shared region
 * (mmap), learns of pending commands (poll) and reports replies
 * (LAKE_IOC_COMPLETE).  The API itself is the generated stubs
 * (lake_stubs.c), exported to other modules.
 */
#include <linux/capability.h>
#include <linux/log2.h>
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/seq_file.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <linux/vmalloc.h>
#include "lake_chan.h"
#include "lake_shm.h"

static unsigned int arena_mb = 64;
module_param(arena_mb, uint, 0444);
MODULE_PARM_DESC(arena_mb, "Size of the lakeShm arena in MiB (1-4096, default 64)");

static unsigned int nslots = 128;
module_param(nslots, uint, 0444);
MODULE_PARM_DESC(nslots, "Command slots, i.e. calls in flight at once (a power of two, 1-4096, default 128)");

/* The writable parameters are bounded: a write out of range fails (EINVAL). */
#define LAKE_TIMEOUT_MS_MAX	3600000u	/* an hour */
#define LAKE_SPIN_US_MAX	10000u		/* 10 ms */

static int lake_set_timeout_ms(const char *val, const struct kernel_param *kp)
{
	return param_set_uint_minmax(val, kp, 0, LAKE_TIMEOUT_MS_MAX);
}

static int lake_set_spin_us(const char *val, const struct kernel_param *kp)
{
	return param_set_uint_minmax(val, kp, 0, LAKE_SPIN_US_MAX);
}

static const struct kernel_param_ops lake_timeout_ms_ops = {
	.set = lake_set_timeout_ms,
	.get = param_get_uint,
};

static const struct kernel_param_ops lake_spin_us_ops = {
	.set = lake_set_spin_us,
	.get = param_get_uint,
};

unsigned int lake_timeout_ms = 10000;
module_param_cb(timeout_ms, &lake_timeout_ms_ops, &lake_timeout_ms, 0644);
MODULE_PARM_DESC(timeout_ms, "How long a call may wait in all (for a slot and for lakeD's reply), in ms (0 = forever, at most 3600000, default 10000)");

unsigned int lake_spin_us = 20;
module_param_cb(spin_us, &lake_spin_us_ops, &lake_spin_us, 0644);
MODULE_PARM_DESC(spin_us, "How long a caller spins for a reply before sleeping, in us (at most 10000, default 20)");

static struct dentry *lake_debugfs;

static int lake_open(struct inode *inode, struct file *file)
{
	return 0;
}

static int lake_release(struct inode *inode, struct file *file)
{
	lake_chan_detach(file);
	return 0;
}

static long lake_ioc_attach(struct file *file, struct lake_attach __user *uarg)
{
	struct lake_chan *ch = &lake_chan;
	struct lake_attach a;
	unsigned int i;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (copy_from_user(&a, uarg, sizeof(a)))
		return -EFAULT;
	if (a.flags)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(a.reserved); i++)
		if (a.reserved[i])
			return -EINVAL;
	if (a.version != LAKE_PROTO_VERSION) {
		pr_warn("lake: lakeD speaks protocol %u, lake.ko %u: %s is stale\n",
			a.version, LAKE_PROTO_VERSION,
			a.version < LAKE_PROTO_VERSION ? "lakeD" : "lake.ko");
		return -EPROTONOSUPPORT;
	}
	if (a.spec_hash != LAKE_SPEC_HASH) {
		pr_warn("lake: lakeD was generated from another api-spec (hash %016llx, lake.ko has %016llx): rebuild both from the same tree\n",
			(unsigned long long)a.spec_hash, (unsigned long long)LAKE_SPEC_HASH);
		return -EPROTO;
	}
	ret = lake_chan_attach(file);
	if (ret)
		return ret;
	a.nslots = ch->nslots;
	a.slot_size = LAKE_SLOT_SIZE;
	a.map_size = ch->region_size;
	a.sq_offset = ch->sq_offset;
	a.slots_offset = ch->slots_offset;
	a.arena_offset = ch->arena_offset;
	a.arena_size = ch->arena_size;
	if (copy_to_user(uarg, &a, sizeof(a))) {
		lake_chan_detach(file);
		return -EFAULT;
	}
	pr_info("lake: lakeD (pid %d) attached\n", task_pid_nr(current));
	return 0;
}

static long lake_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;
	int ret;

	switch (cmd) {
	case LAKE_IOC_ATTACH:
		return lake_ioc_attach(file, uarg);
	case LAKE_IOC_COMPLETE:
		if (!lake_chan_is_daemon(file))
			return -EPERM;
		return lake_chan_complete(uarg);
	case LAKE_IOC_HANDOFF: {
		__s32 nr;

		if (get_user(nr, (__s32 __user *)uarg))
			return -EFAULT;
		ret = lake_chan_handoff(file, nr);
		if (!ret)
			pr_info("lake: lakeD (pid %d) handed the channel to pid %d\n",
				task_pid_nr(current), nr);
		return ret;
	}
	default:
		return -ENOTTY;
	}
}

static __poll_t lake_poll(struct file *file, poll_table *wait)
{
	if (!lake_chan_is_daemon(file))
		return EPOLLERR;
	poll_wait(file, &lake_chan.daemon_wq, wait);
	/*
	 * poll_wait() queues us under the queue's lock but is no full barrier:
	 * without one our read of the tail could pass our queueing, and a
	 * submitter that published just then would find nobody to wake
	 * (wq_has_sleeper() in lake_k_submit()) while we go to sleep with a
	 * command pending.  Pairs with the smp_mb() there, as sock_poll_wait().
	 */
	smp_mb();
	return lake_chan_pending() ? EPOLLIN | EPOLLRDNORM : 0;
}

static int lake_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct lake_chan *ch = &lake_chan;
	unsigned long size = vma->vm_end - vma->vm_start;
	unsigned long off = vma->vm_pgoff << PAGE_SHIFT;

	/* Only the process that attached (or the one it handed the channel
	 * to): not a child holding the descriptor. */
	if (!lake_chan_is_daemon_process(file))
		return -EPERM;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_pgoff > (ch->region_size >> PAGE_SHIFT) ||
	    off > ch->region_size || size > ch->region_size - off)
		return -EINVAL;
	/* VM_DONTCOPY: a fork of lakeD does not inherit the region. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP | VM_DONTCOPY);
#else
	vma->vm_flags |= VM_DONTEXPAND | VM_DONTDUMP | VM_DONTCOPY;
#endif
	return remap_vmalloc_range(vma, ch->region, vma->vm_pgoff);
}

static const struct file_operations lake_fops = {
	.owner = THIS_MODULE,
	.open = lake_open,
	.release = lake_release,
	.unlocked_ioctl = lake_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.poll = lake_poll,
	.mmap = lake_mmap,
	.llseek = noop_llseek,
};

static struct miscdevice lake_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "lake",
	.fops = &lake_fops,
	.mode = 0600,
};

#define LAKE_API_NAME(id, name, spec) [id] = #name,
static const char *const lake_api_names[LAKE_API_MAX + 1] = {
	LAKE_FOR_EACH_API(LAKE_API_NAME)
};

static int lake_stats_show(struct seq_file *m, void *v)
{
	struct lake_chan *ch = &lake_chan;
	struct lake_stats *st = &ch->stats;
	u32 modules, bound;
	unsigned int i;

	seq_printf(m, "daemon: %s\n", READ_ONCE(ch->attached) ? "attached" : "absent");
	seq_printf(m, "attaches: %lld\n", atomic64_read(&st->attaches));
	seq_printf(m, "in_flight: %d\n", atomic_read(&ch->inflight));
	seq_printf(m, "slots: %u\n", ch->nslots);
	seq_printf(m, "arena_bytes: %zu\n", lake_shm_size());
	seq_printf(m, "arena_used: %zu\n", lake_shm_size() - lake_shm_avail());
	seq_printf(m, "timeouts: %lld\n", atomic64_read(&st->timeouts));
	seq_printf(m, "interrupted: %lld\n", atomic64_read(&st->interrupted));
	seq_printf(m, "unavailable: %lld\n", atomic64_read(&st->unavailable));
	seq_printf(m, "bad_completions: %lld\n", atomic64_read(&st->bad_completions));
	lake_transport_layouts(&ch->transport, &modules, &bound);
	seq_printf(m, "layout_modules: %u\n", modules);
	seq_printf(m, "layout_functions: %u\n", bound);
	seq_puts(m, "calls:\n");
	for (i = 1; i <= LAKE_API_MAX + 1; i++) {
		long long calls = atomic64_read(&st->calls[i]);

		if (calls)
			seq_printf(m, "  %-36s %lld calls %lld errors\n",
				   i <= LAKE_API_MAX ? lake_api_names[i] : "(null round trip)",
				   calls, atomic64_read(&st->errors[i]));
	}
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(lake_stats);

static int __init lake_init(void)
{
	int ret;

	/* A power of two keeps the free-running queue indexes right across
	 * their wrap-around. */
	if (!arena_mb || arena_mb > 4096 || !is_power_of_2(nslots) || nslots > 4096) {
		pr_err("lake: arena_mb must be 1-4096 and nslots a power of two up to 4096\n");
		return -EINVAL;
	}
	ret = lake_chan_init(nslots, (size_t)arena_mb << 20);
	if (ret)
		return ret;
	ret = misc_register(&lake_misc);
	if (ret) {
		lake_chan_exit();
		return ret;
	}
	lake_debugfs = debugfs_create_dir("lake", NULL);
	debugfs_create_file("stats", 0444, lake_debugfs, NULL, &lake_stats_fops);
	pr_info("lake: /dev/lake ready: %u slots, %u MiB arena, spec %016llx\n",
		nslots, arena_mb, (unsigned long long)LAKE_SPEC_HASH);
	return 0;
}

static void __exit lake_exit(void)
{
	debugfs_remove(lake_debugfs);
	misc_deregister(&lake_misc);
	lake_chan_exit();
}

module_init(lake_init);
module_exit(lake_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("LAKE: the CUDA Driver API for kernel code, remoted to a user-space daemon");
