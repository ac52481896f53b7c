// SPDX-License-Identifier: GPL-2.0
/*
 * The VM bridge, guest side: when lake.ko runs in a VM that has QEMU's
 * ivshmem device (ivshmem-plain, 1af4:1110), the channel's region (control
 * page, queue, slots, lakeShm arena) is laid out in the device's BAR 2, and
 * the host's lakeD, which maps the same file, serves it.  The layout and the
 * protocol are in include/lake/lake_ivshmem.h; the reasons in
 * docs/vm-bridge.md.
 *
 * Callers are unchanged: they use the channel as on /dev/lake (kmod/lake_chan.c)
 * and spin on their slot's done_seq, then sleep.  What the ioctls do there, a
 * kernel thread does here: it takes the completions lakeD writes into the
 * completion queue and hands them to lake_chan_complete_batch(), which checks
 * each against the slot's private state and sequence number; it keeps a
 * heartbeat for lakeD to see, watches lakeD's, and attaches and detaches the
 * channel as sessions begin and end.  The thread polls -- briefly after
 * activity, backing off to LAKE_VM_POLL_MAX_US while calls are in flight --
 * and sleeps on the channel's daemon wait queue (which submitters wake) when
 * none are.  Nothing the host writes is trusted: every word is read once
 * and checked, and the layout lake.ko uses is its own copy.
 */
#include <linux/delay.h>
#include <linux/io.h>
#include <linux/kthread.h>
#include <linux/moduleparam.h>
#include <linux/pci.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/string.h>
#include "lake_chan.h"
#include "lake_bridge.h"
#include "lake_ivshmem.h"

#define LAKE_VM_POLL_MIN_US	20	/* first sleep after activity, someone waiting */
#define LAKE_VM_POLL_MAX_US	200	/* longest sleep while someone waits */
#define LAKE_VM_POLL_IDLE_US	1000	/* calls in flight, their callers spinning */
#define LAKE_VM_MIN_SPIN_US	100	/* callers' spin_us in a VM (see lake_ivshmem_probe()) */
#define LAKE_VM_MIN_ARENA	(1u << 20)

static char *vm = "auto";
module_param(vm, charp, 0444);
MODULE_PARM_DESC(vm, "The VM bridge: 'auto' (default: the first ivshmem device of at least 2 MiB, else /dev/lake), 'off' (/dev/lake only), or the PCI address of the ivshmem device to use");

static unsigned int host_timeout_ms = 1000;

/* Bounded like lake.ko's other writable parameters: out of range is EINVAL. */
static int lake_set_host_timeout(const char *val, const struct kernel_param *kp)
{
	return param_set_uint_minmax(val, kp, 2 * LAKE_IVSHMEM_BEAT_MS, 600000);
}

static const struct kernel_param_ops lake_host_timeout_ops = {
	.set = lake_set_host_timeout,
	.get = param_get_uint,
};
module_param_cb(host_timeout_ms, &lake_host_timeout_ops, &host_timeout_ms, 0644);
MODULE_PARM_DESC(host_timeout_ms, "VM bridge: how long the host's lakeD may stay silent (no heartbeat) before its calls fail, in ms (200-600000, default 1000)");

struct lake_vm {
	struct pci_dev *pdev;
	void *base;			/* BAR 2, memremap()ed */
	size_t size;
	struct lake_ivshmem_hdr *hdr;	/* shared: read the host's words once, check them */
	struct lake_completion *cq;	/* shared */
	u32 cq_entries;
	u32 cq_head;			/* ours; the shared copy is a mirror */
	struct lake_completion *cbuf;	/* private copies of the entries taken */
	u64 ring_offset;
	struct lake_attach layout;	/* what we laid out: written again at each attach */
	struct task_struct *thread;

	u32 session;			/* the host session served, 0: none */
	u32 refused;			/* a session not to take (ended, or stale at load) */
	u32 epoch;
	u32 beat;
	u32 host_beat;			/* the host's heartbeat as last seen ... */
	u64 host_beat_ns;		/* ... and when it last changed */
	u32 host_pid;
	u64 next_beat_ns;

	atomic64_t sessions;		/* attached */
	atomic64_t host_silent;		/* sessions ended by a silent host */
	atomic64_t host_ended;		/* sessions ended or replaced by the host */
	atomic64_t host_corrupt;	/* sessions ended by a corrupted completion queue */
	atomic64_t refusals;		/* offers refused: another protocol or spec */
	/* Its address identifies the VM session to lake_chan_attach(). */
	u8 owner;
};

static struct lake_vm lake_vm;

bool lake_ivshmem_active(void)
{
	return lake_vm.base != NULL;
}

/* The parts of the header that are ours, as we laid them out. */
static void lake_vm_publish_layout(struct lake_vm *v)
{
	struct lake_ivshmem_hdr *h = v->hdr;

	WRITE_ONCE(h->magic, LAKE_IVSHMEM_MAGIC);
	WRITE_ONCE(h->version, LAKE_IVSHMEM_VERSION);
	WRITE_ONCE(h->proto_version, LAKE_PROTO_VERSION);
	WRITE_ONCE(h->spec_hash, LAKE_SPEC_HASH);
	WRITE_ONCE(h->cq_offset, lake_ivshmem_cq_offset());
	WRITE_ONCE(h->cq_entries, v->cq_entries);
	WRITE_ONCE(h->guest_reserved0, 0);
	WRITE_ONCE(h->ring_offset, v->ring_offset);
	memcpy(&h->layout, &v->layout, sizeof(h->layout));
}

/*
 * Ends the session: the channel detaches (callers in flight fail with
 * -ENODEV, later ones fail fast), and lakeD sees guest_ack change.  The
 * session is never taken again.
 */
static void lake_vm_end_session(struct lake_vm *v, const char *why)
{
	u32 s = v->session;

	v->session = 0;
	v->refused = s;
	WRITE_ONCE(v->hdr->guest_ack, 0);
	WRITE_ONCE(v->hdr->guest_epoch, ++v->epoch);
	smp_store_release(&v->hdr->guest_state, LAKE_IVSHMEM_GUEST_READY);
	lake_chan_detach(&v->owner);
	pr_info("lake: VM bridge: session %08x with the host's lakeD (pid %u) ended: %s\n",
		s, v->host_pid, why);
}

static void lake_vm_try_attach(struct lake_vm *v, u64 now)
{
	struct lake_ivshmem_hdr *h = v->hdr;
	u32 s = smp_load_acquire(&h->host_session);
	u32 proto;
	u64 spec;

	if (!s || s == v->refused)
		return;
	proto = READ_ONCE(h->host_proto_version);
	spec = READ_ONCE(h->host_spec_hash);
	v->host_pid = READ_ONCE(h->host_pid);
	if (proto != LAKE_PROTO_VERSION || spec != LAKE_SPEC_HASH) {
		v->refused = s;
		atomic64_inc(&v->refusals);
		pr_warn("lake: VM bridge: the host's lakeD (pid %u) speaks protocol %u, spec %016llx; lake.ko %u, %016llx: not attaching (use lakeD and lake.ko from the same build)\n",
			v->host_pid, proto, (unsigned long long)spec, LAKE_PROTO_VERSION,
			(unsigned long long)LAKE_SPEC_HASH);
		return;
	}
	/* Our side of the ring starts afresh; lakeD reset its side before
	 * offering the session. */
	lake_vm_publish_layout(v);
	v->cq_head = 0;
	WRITE_ONCE(h->cq_head, 0);
	if (lake_chan_attach(&v->owner))
		return;
	v->session = s;
	v->host_beat = READ_ONCE(h->host_beat);
	v->host_beat_ns = now;
	/* The layout and the reset indexes are visible before the ack. */
	smp_store_release(&h->guest_ack, s);
	smp_store_release(&h->guest_state, LAKE_IVSHMEM_GUEST_ATTACHED);
	atomic64_inc(&v->sessions);
	pr_info("lake: VM bridge: served by the host's lakeD (pid %u), session %08x\n",
		v->host_pid, s);
}

/* Is the session still on?  Ends it when lakeD ended it or went silent. */
static void lake_vm_check_host(struct lake_vm *v, u64 now)
{
	struct lake_ivshmem_hdr *h = v->hdr;
	u32 s = READ_ONCE(h->host_session);
	u32 beat = READ_ONCE(h->host_beat);
	u64 limit = (u64)READ_ONCE(host_timeout_ms) * NSEC_PER_MSEC;

	if (s != v->session) {
		atomic64_inc(&v->host_ended);
		lake_vm_end_session(v, s ? "a new lakeD offers another session" : "lakeD ended it");
		return;
	}
	if (beat != v->host_beat) {
		v->host_beat = beat;
		v->host_beat_ns = now;
	} else if (now - v->host_beat_ns > limit) {
		atomic64_inc(&v->host_silent);
		lake_vm_end_session(v, "lakeD went silent (no heartbeat within host_timeout_ms)");
	}
}

/*
 * Takes the completions lakeD wrote and applies them (each checked by
 * lake_chan_complete_batch()).  Returns how many were taken.
 */
static u32 lake_vm_drain(struct lake_vm *v)
{
	u32 tail = smp_load_acquire(&v->hdr->cq_tail);
	u32 n = tail - v->cq_head, i;

	if (!n)
		return 0;
	if (n > v->cq_entries) {
		atomic64_inc(&lake_chan.stats.bad_completions);
		atomic64_inc(&v->host_corrupt);
		pr_warn_ratelimited("lake: VM bridge: lakeD's completion queue claims %u entries of %u (head %u, tail %u)\n",
				    n, v->cq_entries, v->cq_head, tail);
		lake_vm_end_session(v, "its completion queue is corrupted");
		return 0;
	}
	for (i = 0; i < n; i++) {
		const struct lake_completion *e = &v->cq[(v->cq_head + i) & (v->cq_entries - 1)];

		v->cbuf[i].slot = READ_ONCE(e->slot);
		v->cbuf[i].seq = READ_ONCE(e->seq);
		v->cbuf[i].reserved = READ_ONCE(e->reserved);
		v->cbuf[i].status = 0;
	}
	v->cq_head = tail;
	/* The entries are read: lakeD may write there again. */
	smp_store_release(&v->hdr->cq_head, tail);
	lake_chan_complete_batch(v->cbuf, n);
	return n;
}

static bool lake_vm_busy(struct lake_vm *v)
{
	return v->session && atomic_read(&lake_chan.inflight);
}

/*
 * Does anyone wait for us: a caller asleep on its reply or on a free slot,
 * or free slots running low?  A hint, read without the lock: a caller that
 * just went to sleep is seen at the next look, LAKE_VM_POLL_IDLE_US later
 * at most.  While callers spin on done_seq nobody needs us soon, and looking
 * less often leaves the CPU to them (under TCG every wake-up is the host's).
 */
static bool lake_vm_wanted(void)
{
	struct lake_chan *ch = &lake_chan;
	u32 i;

	if (wq_has_sleeper(&ch->slot_wq) || READ_ONCE(ch->nfree) < ch->nslots / 2)
		return true;
	for (i = 0; i < ch->nslots; i++)
		if (waitqueue_active(&ch->kslots[i].wq))
			return true;
	return false;
}

static int lake_vm_thread(void *data)
{
	struct lake_vm *v = data;
	unsigned int poll_us = LAKE_VM_POLL_MIN_US;

	while (!kthread_should_stop()) {
		u64 now = ktime_get_ns();

		if (now >= v->next_beat_ns) {
			WRITE_ONCE(v->hdr->guest_beat, ++v->beat);
			v->next_beat_ns = now + LAKE_IVSHMEM_BEAT_MS * NSEC_PER_MSEC;
		}
		if (v->session)
			lake_vm_check_host(v, now);
		if (!v->session)
			lake_vm_try_attach(v, now);
		if (v->session && lake_vm_drain(v)) {
			poll_us = LAKE_VM_POLL_MIN_US;
			cond_resched();
			continue;
		}
		if (lake_vm_busy(v)) {
			/* Calls in flight.  We free slots and wake sleepers:
			 * soon when someone waits for that, else seldom. */
			if (lake_vm_wanted()) {
				usleep_range(poll_us, poll_us + poll_us / 2);
				poll_us = min(poll_us * 2, LAKE_VM_POLL_MAX_US);
			} else {
				usleep_range(LAKE_VM_POLL_IDLE_US, 2 * LAKE_VM_POLL_IDLE_US);
			}
		} else {
			poll_us = LAKE_VM_POLL_MIN_US;
			wait_event_interruptible_timeout(lake_chan.daemon_wq,
							 kthread_should_stop() || lake_vm_busy(v),
							 msecs_to_jiffies(LAKE_IVSHMEM_BEAT_MS));
		}
	}
	return 0;
}

/* Is the header page LAKE's to write: zeros (a fresh file), a previous
 * lake.ko's layout, or a file lakeD serves? */
static bool lake_vm_header_ours(const void *base)
{
	const struct lake_ivshmem_hdr *h = base;

	return READ_ONCE(h->magic) == LAKE_IVSHMEM_MAGIC ||
	       READ_ONCE(h->host_magic) == LAKE_IVSHMEM_MAGIC ||
	       !memchr_inv(base, 0, LAKE_IVSHMEM_PAGE);
}

static void lake_vm_unmap(struct lake_vm *v)
{
	memunmap(v->base);
	v->base = NULL;
	pci_release_region(v->pdev, 2);
	pci_disable_device(v->pdev);
	v->pdev = NULL;
}

/*
 * Maps BAR 2 of @pdev if it can hold the channel: returns 0, -ENOSPC (too
 * small), -EEXIST (it holds what is not LAKE's; only checked when @check),
 * or another negative errno.
 */
static int lake_vm_map(struct lake_vm *v, struct pci_dev *pdev, u32 nslots, bool check)
{
	size_t size = pci_resource_len(pdev, 2);
	int ret;

	if (!(pci_resource_flags(pdev, 2) & IORESOURCE_MEM) ||
	    size < LAKE_IVSHMEM_MIN_SIZE ||
	    size < lake_ivshmem_ring_offset(lake_ivshmem_cq_entries(nslots)) +
		   lake_chan_arena_offset(nslots) + LAKE_VM_MIN_ARENA)
		return -ENOSPC;
	ret = pci_enable_device_mem(pdev);
	if (ret)
		return ret;
	ret = pci_request_region(pdev, 2, "lake");
	if (ret) {
		pci_disable_device(pdev);
		return ret;
	}
	v->pdev = pdev;
	v->size = size;
	/* ivshmem's BAR 2 is the host file's memory: ordinary cacheable RAM. */
	v->base = memremap(pci_resource_start(pdev, 2), size, MEMREMAP_WB);
	if (!v->base) {
		pci_release_region(pdev, 2);
		pci_disable_device(pdev);
		v->pdev = NULL;
		return -ENOMEM;
	}
	if (check && !lake_vm_header_ours(v->base)) {
		lake_vm_unmap(v);
		return -EEXIST;
	}
	return 0;
}

/*
 * The device to use, mapped: the one @vm names, or the first that can hold
 * the channel and is not somebody else's.  Returns it (holding the
 * reference pci_get_device() took), NULL for none, or an ERR_PTR.
 */
static struct pci_dev *lake_vm_find(struct lake_vm *v, u32 nslots)
{
	struct pci_dev *pdev = NULL;
	bool any = !strcmp(vm, "auto");
	int ret;

	while ((pdev = pci_get_device(LAKE_IVSHMEM_VENDOR, LAKE_IVSHMEM_DEVICE, pdev))) {
		if (!any && strcmp(vm, pci_name(pdev)))
			continue;
		ret = lake_vm_map(v, pdev, nslots, any);
		if (!ret)
			return pdev;
		if (ret == -EEXIST)
			pr_info("lake: VM bridge: ivshmem %s holds data that is not LAKE's: not using it (vm=%s takes it)\n",
				pci_name(pdev), pci_name(pdev));
		if (!any) {
			pr_err("lake: VM bridge: cannot use %s: %s (BAR 2: %llu bytes)\n",
			       pci_name(pdev), ret == -ENOSPC ? "too small for the channel" : "no memory or busy",
			       (unsigned long long)pci_resource_len(pdev, 2));
			pci_dev_put(pdev);
			return ERR_PTR(ret);
		}
	}
	if (!any) {
		pr_err("lake: VM bridge: no ivshmem device at %s (vm=)\n", vm);
		return ERR_PTR(-ENODEV);
	}
	return NULL;
}

/**
 * lake_ivshmem_probe() - find the VM bridge's device and lay the region out
 * @nslots: the channel's slots
 * @arena_size: set to the arena's size (what the device leaves after the rest)
 * @region: set to where the channel's region starts, or NULL: no bridge
 *
 * Called at load, before lake_chan_init().  Without a device (and vm=auto),
 * or with vm=off, leaves @region NULL: lake.ko serves /dev/lake.
 *
 * Return: 0, or a negative errno: the named device is missing or unusable.
 */
int lake_ivshmem_probe(u32 nslots, size_t *arena_size, void **region)
{
	struct lake_vm *v = &lake_vm;
	struct pci_dev *pdev;
	size_t front = lake_chan_arena_offset(nslots);

	*region = NULL;
	if (!strcmp(vm, "off"))
		return 0;
	pdev = lake_vm_find(v, nslots);
	if (IS_ERR_OR_NULL(pdev))
		return PTR_ERR_OR_ZERO(pdev);
	v->cq_entries = lake_ivshmem_cq_entries(nslots);
	v->ring_offset = lake_ivshmem_ring_offset(v->cq_entries);
	v->cbuf = kcalloc(v->cq_entries, sizeof(*v->cbuf), GFP_KERNEL);
	if (!v->cbuf) {
		lake_vm_unmap(v);
		pci_dev_put(pdev);
		return -ENOMEM;
	}
	v->hdr = v->base;
	v->cq = v->base + lake_ivshmem_cq_offset();
	/*
	 * lakeD on the host polls its queue (there are no interrupts): a reply
	 * takes it up to a few tens of microseconds after a pause, longer than
	 * the default spin_us, and a caller that then sleeps comes back later
	 * than lakeD's spin window: both sides would keep sleeping.  Spinning a
	 * little longer keeps round trips on the fast path (0 still means never).
	 */
	if (lake_spin_us && lake_spin_us < LAKE_VM_MIN_SPIN_US) {
		pr_info("lake: VM bridge: spin_us %u -> %u\n", lake_spin_us, LAKE_VM_MIN_SPIN_US);
		lake_spin_us = LAKE_VM_MIN_SPIN_US;
	}
	*arena_size = (v->size - v->ring_offset - front) & PAGE_MASK;
	*region = v->base + v->ring_offset;

	v->layout = (struct lake_attach) {
		.version = LAKE_PROTO_VERSION,
		.spec_hash = LAKE_SPEC_HASH,
		.nslots = nslots,
		.slot_size = LAKE_SLOT_SIZE,
		.map_size = front + *arena_size,
		.sq_offset = PAGE_SIZE,
		.slots_offset = PAGE_SIZE + PAGE_ALIGN(nslots * sizeof(u32)),
		.arena_offset = front,
		.arena_size = *arena_size,
	};
	/* Whatever session a host offered before we were loaded belongs to
	 * someone else (an earlier boot): not ours to take. */
	v->refused = READ_ONCE(v->hdr->host_session);
	v->epoch = get_random_u32();
	memset(v->cq, 0, (size_t)v->cq_entries * sizeof(*v->cq));
	WRITE_ONCE(v->hdr->guest_ack, 0);
	WRITE_ONCE(v->hdr->guest_epoch, v->epoch);
	WRITE_ONCE(v->hdr->cq_head, 0);
	lake_vm_publish_layout(v);
	pr_info("lake: VM bridge: ivshmem %s, %zu MiB shared with the host: the host's lakeD serves this kernel\n",
		pci_name(pdev), v->size >> 20);
	return 0;
}

/**
 * lake_ivshmem_start() - start serving the bridge (after lake_chan_init())
 *
 * Return: 0 (also without a bridge), or a negative errno.
 */
int lake_ivshmem_start(void)
{
	struct lake_vm *v = &lake_vm;
	struct task_struct *t;

	if (!v->base)
		return 0;
	t = kthread_run(lake_vm_thread, v, "lake_ivshmem");
	if (IS_ERR(t))
		return PTR_ERR(t);
	v->thread = t;
	/* lakeD may offer a session now. */
	smp_store_release(&v->hdr->guest_state, LAKE_IVSHMEM_GUEST_READY);
	return 0;
}

/**
 * lake_ivshmem_stop() - stop the bridge's thread and end its session
 *
 * lakeD sees the guest go (guest_state ABSENT) and frees what it held for it.
 */
void lake_ivshmem_stop(void)
{
	struct lake_vm *v = &lake_vm;

	if (!v->base)
		return;
	if (v->thread)
		kthread_stop(v->thread);
	v->thread = NULL;
	if (v->session)
		lake_vm_end_session(v, "lake.ko is unloading");
	WRITE_ONCE(v->hdr->guest_state, LAKE_IVSHMEM_GUEST_ABSENT);
}

/**
 * lake_ivshmem_release() - give the device back (after lake_chan_exit())
 */
void lake_ivshmem_release(void)
{
	struct lake_vm *v = &lake_vm;
	struct pci_dev *pdev = v->pdev;

	if (!pdev)
		return;
	kfree(v->cbuf);
	v->cbuf = NULL;
	lake_vm_unmap(v);
	pci_dev_put(pdev);
}

/**
 * lake_ivshmem_show() - the bridge's lines of lake.ko's statistics
 * @m: the debugfs file
 */
void lake_ivshmem_show(struct seq_file *m)
{
	struct lake_vm *v = &lake_vm;
	u32 s;

	if (!v->base) {
		seq_puts(m, "transport: /dev/lake\n");
		return;
	}
	s = READ_ONCE(v->session);
	seq_printf(m, "transport: ivshmem %s (%zu MiB)\n", pci_name(v->pdev), v->size >> 20);
	if (s)
		seq_printf(m, "vm_session: %08x (host lakeD pid %u)\n", s, READ_ONCE(v->host_pid));
	else
		seq_puts(m, "vm_session: none\n");
	seq_printf(m, "vm_sessions: %lld\n", atomic64_read(&v->sessions));
	seq_printf(m, "vm_host_silent: %lld\n", atomic64_read(&v->host_silent));
	seq_printf(m, "vm_host_ended: %lld\n", atomic64_read(&v->host_ended));
	seq_printf(m, "vm_host_corrupt: %lld\n", atomic64_read(&v->host_corrupt));
	seq_printf(m, "vm_refusals: %lld\n", atomic64_read(&v->refusals));
}
