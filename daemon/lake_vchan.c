// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * VM channels (see lake_vchan.h and include/lake/lake_ivshmem.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include "lake_chan.h"
#include "lake_log.h"
#include "lake_vchan.h"
#include "lake_vendor.h"

#define LAKE_VCHAN_OFFER_MS	5000	/* how long an offered session waits for the guest's ack */
#define LAKE_VCHAN_RETRY_MS	1000	/* pause after a refused or failed session */
#define LAKE_VCHAN_WAIT_MS	50	/* longest wait() before lake_serve() looks again */
#define LAKE_VCHAN_POLL_MIN_US	20	/* wait()'s sleeps: this short ... */
#define LAKE_VCHAN_POLL_MAX_US	1000	/* ... doubling up to this long ... */
#define LAKE_VCHAN_POLL_FAST_MS	5	/* ... once the guest was idle this long */
#define LAKE_VCHAN_CQ_FULL_MS	2000	/* a guest that consumes no completion this long is broken */

struct lake_vchan {
	struct lake_chan chan;		/* served with lake_serve() */
	struct lake_vchan_opts o;
	char name[300];
	int fd;
	__u8 *map;
	size_t size;
	struct lake_ivshmem_hdr *hdr;
	pthread_t thread, beat_thread;
	bool beat_started;
	atomic_int stopping;
	atomic_int serving;		/* a session is served now */
	/*
	 * complete() and wait() of several serving threads: the completion
	 * queue's tail and the view of the guest's heartbeat below.
	 */
	pthread_mutex_t lock;

	/* The session being served (set up by the channel's thread). */
	__u32 session;
	__u32 epoch;			/* the guest's epoch when it acked */
	struct lake_ivshmem_hdr guest;	/* the header as read once, after the ack */
	struct lake_completion *cq;
	__u32 cq_entries;
	__u32 cq_tail;
	__u32 guest_beat;		/* the guest's heartbeat as last seen ... */
	__u64 guest_beat_ns;		/* ... and when it last changed */
	const char *ended;		/* why the guest's session ended (wait() stopped) */
	unsigned int poll_us;		/* wait()'s current sleep */
	__u64 active_ns;		/* when wait() last saw the guest submit */
	unsigned int busy_waits;	/* wait() returns in a row with nothing new */
	__u32 busy_tail;
};

#define lake_vchan_of(ch)	((struct lake_vchan *)((char *)(ch) - offsetof(struct lake_vchan, chan)))

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

static bool lake_vchan_stop_asked(struct lake_vchan *v)
{
	return atomic_load_explicit(&v->stopping, memory_order_relaxed) ||
	       (v->o.stop && atomic_load_explicit(v->o.stop, memory_order_relaxed));
}

static void lake_sleep_us(unsigned int us)
{
	struct timespec ts = { .tv_sec = us / 1000000u, .tv_nsec = (long)(us % 1000000u) * 1000L };

	nanosleep(&ts, NULL);
}

/* Sleeps @ms in short steps; false if a stop came meanwhile. */
static bool lake_vchan_pause(struct lake_vchan *v, unsigned int ms)
{
	for (; ms; ms -= ms < 20 ? ms : 20) {
		if (lake_vchan_stop_asked(v))
			return false;
		lake_sleep_us(ms < 20 ? ms * 1000u : 20000u);
	}
	return !lake_vchan_stop_asked(v);
}

#define LAKE_LD(field)		__atomic_load_n(&(field), __ATOMIC_ACQUIRE)
#define LAKE_ST(field, val)	__atomic_store_n(&(field), (val), __ATOMIC_RELEASE)

static bool lake_pow2(__u64 x)
{
	return x && !(x & (x - 1));
}

/* ------------------------------------------------------------------------ */
/* The guest's header                                                       */

#define LAKE_WHY(...)	do { snprintf(why, whylen, __VA_ARGS__); return -EPROTO; } while (0)

int lake_vchan_check_layout(const struct lake_ivshmem_hdr *h, void *base, __u64 file_size,
			    struct lake_ring *ring, char *why, size_t whylen)
{
	const struct lake_attach *l = &h->layout;
	unsigned int i;
	__u64 cq_end;

	if (h->magic != LAKE_IVSHMEM_MAGIC)
		LAKE_WHY("no LAKE guest (magic 0x%016llx)", (unsigned long long)h->magic);
	if (h->version != LAKE_IVSHMEM_VERSION)
		LAKE_WHY("the guest's lake.ko lays the region out in version %u, lakeD in %u -- "
			 "use lake.ko and lakeD of the same build", h->version, LAKE_IVSHMEM_VERSION);
	if (h->proto_version != LAKE_PROTO_VERSION || l->version != LAKE_PROTO_VERSION)
		LAKE_WHY("protocol version mismatch: the guest's lake.ko speaks %u, lakeD %u -- "
			 "use lake.ko and lakeD of the same build", h->proto_version,
			 LAKE_PROTO_VERSION);
	if (h->spec_hash != LAKE_SPEC_HASH || l->spec_hash != LAKE_SPEC_HASH)
		LAKE_WHY("spec hash mismatch: the guest's lake.ko was generated from api-spec/ "
			 "0x%016llx, lakeD from 0x%016llx -- rebuild both",
			 (unsigned long long)h->spec_hash, (unsigned long long)LAKE_SPEC_HASH);
	if (h->guest_reserved0 || l->flags)
		LAKE_WHY("reserved fields are not zero");
	for (i = 0; i < sizeof(l->reserved) / sizeof(l->reserved[0]); i++)
		if (l->reserved[i])
			LAKE_WHY("reserved fields are not zero");
	if (!lake_pow2(l->nslots) || l->nslots > LAKE_IVSHMEM_MAX_SLOTS)
		LAKE_WHY("%u slots: not a power of two up to %u", l->nslots, LAKE_IVSHMEM_MAX_SLOTS);
	if (!lake_pow2(h->cq_entries) || h->cq_entries < l->nslots ||
	    h->cq_entries > 2 * LAKE_IVSHMEM_MAX_SLOTS)
		LAKE_WHY("%u completion entries for %u slots", h->cq_entries, l->nslots);
	if (h->cq_offset < sizeof(*h) || h->cq_offset % 64 || h->cq_offset > file_size)
		LAKE_WHY("completion queue at %llu is misplaced", (unsigned long long)h->cq_offset);
	cq_end = h->cq_offset + (__u64)h->cq_entries * sizeof(struct lake_completion);
	if (cq_end > file_size || h->ring_offset < cq_end || h->ring_offset % LAKE_IVSHMEM_PAGE)
		LAKE_WHY("ring at %llu overlaps the completion queue (%llu..%llu) or is not page "
			 "aligned", (unsigned long long)h->ring_offset,
			 (unsigned long long)h->cq_offset, (unsigned long long)cq_end);
	if (h->ring_offset > file_size || l->map_size > file_size - h->ring_offset)
		LAKE_WHY("ring at %llu (+%llu) does not fit in the %llu-byte file",
			 (unsigned long long)h->ring_offset, (unsigned long long)l->map_size,
			 (unsigned long long)file_size);
	if (l->arena_size % LAKE_IVSHMEM_PAGE)
		LAKE_WHY("the arena's size %llu is not a multiple of the page size",
			 (unsigned long long)l->arena_size);
	/* The ring's own parts: what lake_ring_init() checks for every channel. */
	return lake_ring_init(ring, (__u8 *)base + h->ring_offset, l->map_size, l, why, whylen);
}

/* ------------------------------------------------------------------------ */
/* The channel                                                              */

/* Is the session still on?  Sets v->ended when it is not.  Lock held. */
static bool lake_vchan_guest_here(struct lake_vchan *v)
{
	struct lake_ivshmem_hdr *h = v->hdr;
	__u64 now = lake_now_ns();
	__u32 beat;

	if (LAKE_LD(h->guest_ack) != v->session ||
	    LAKE_LD(h->guest_state) != LAKE_IVSHMEM_GUEST_ATTACHED ||
	    LAKE_LD(h->guest_epoch) != v->epoch) {
		v->ended = "the guest ended it (lake.ko unloaded, reloaded or lost lakeD)";
		return false;
	}
	beat = LAKE_LD(h->guest_beat);
	if (beat != v->guest_beat) {
		v->guest_beat = beat;
		v->guest_beat_ns = now;
	} else if (now - v->guest_beat_ns > (__u64)v->o.guest_timeout_ms * 1000000u) {
		v->ended = "the guest went silent (no heartbeat within vm_guest_timeout_ms: "
			   "the VM died or hangs)";
		return false;
	}
	return true;
}

static int lake_vchan_complete(struct lake_chan *ch, struct lake_completion *done, unsigned int n)
{
	struct lake_vchan *v = lake_vchan_of(ch);
	const __u32 mask = v->cq_entries - 1;
	unsigned int i;
	int rc = 0;

	pthread_mutex_lock(&v->lock);
	for (i = 0; i < n && !rc; i++) {
		__u64 full_since = 0;

		/* Room for one more?  A guest that consumes nothing (or lies
		 * about it) gets LAKE_VCHAN_CQ_FULL_MS, then loses the session. */
		while (v->cq_tail - LAKE_LD(v->hdr->cq_head) >= v->cq_entries) {
			__atomic_store_n(&v->hdr->cq_tail, v->cq_tail, __ATOMIC_RELEASE);
			if (!full_since)
				full_since = lake_now_ns();
			if (lake_vchan_stop_asked(v) || !lake_vchan_guest_here(v)) {
				rc = -ENODEV;
				break;
			}
			if (lake_now_ns() - full_since > LAKE_VCHAN_CQ_FULL_MS * 1000000ull) {
				lake_warn("%s: the guest consumed no completion for %d ms (head %u, "
					  "tail %u): dropping its session", v->name,
					  LAKE_VCHAN_CQ_FULL_MS, LAKE_LD(v->hdr->cq_head), v->cq_tail);
				rc = -EPROTO;
				break;
			}
			lake_sleep_us(50);
		}
		if (rc)
			break;
		v->cq[v->cq_tail & mask] = (struct lake_completion){
			.slot = done[i].slot,
			.seq = done[i].seq,
		};
		v->cq_tail++;
	}
	/* The replies and the entries are visible before the new tail. */
	if (!rc)
		__atomic_store_n(&v->hdr->cq_tail, v->cq_tail, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&v->lock);
	return rc;
}

/*
 * Bounded polling (there are no interrupts with ivshmem-plain), for at most
 * LAKE_VCHAN_WAIT_MS, watching the guest's session and heartbeat: every
 * 20 us while the guest was active in the last LAKE_VCHAN_POLL_FAST_MS (a
 * caller that went to sleep comes back later than lake_serve()'s spin
 * window: looking often then keeps the next round trips fast), then
 * doubling up to 1 ms.
 */
static int lake_vchan_wait(struct lake_chan *ch)
{
	struct lake_vchan *v = lake_vchan_of(ch);
	struct lake_ring_ctrl *ctrl = ch->ring.ctrl;
	/* lake_serve() just published its head (the guest could have written
	 * it since: then we merely look too often or too seldom). */
	__u32 head = __atomic_load_n(&ctrl->sq_head, __ATOMIC_RELAXED);
	__u64 end = lake_now_ns() + LAKE_VCHAN_WAIT_MS * 1000000ull;
	__u32 tail = head;

	for (;;) {
		bool here;

		if (lake_vchan_stop_asked(v))
			return LAKE_CHAN_STOP;
		pthread_mutex_lock(&v->lock);
		here = lake_vchan_guest_here(v);
		pthread_mutex_unlock(&v->lock);
		if (!here)
			return LAKE_CHAN_STOP;	/* a normal end, not an error */
		tail = __atomic_load_n(&ctrl->sq_tail, __ATOMIC_ACQUIRE);
		if (tail != head)
			break;
		if (lake_now_ns() >= end)
			break;
		lake_sleep_us(v->poll_us);
		if (v->poll_us < LAKE_VCHAN_POLL_MAX_US &&
		    lake_now_ns() - v->active_ns > LAKE_VCHAN_POLL_FAST_MS * 1000000ull)
			v->poll_us *= 2;
	}
	if (tail != head) {
		v->poll_us = LAKE_VCHAN_POLL_MIN_US;
		v->active_ns = lake_now_ns();
		/* Back at once, again and again, with the same tail: the guest
		 * scribbled on sq_head.  Don't spin at full speed for it. */
		if (tail == v->busy_tail) {
			if (++v->busy_waits > 1000)
				lake_sleep_us(1000);
		} else {
			v->busy_waits = 0;
			v->busy_tail = tail;
		}
	}
	return LAKE_CHAN_AGAIN;
}

static const struct lake_chan_ops lake_vchan_ops = {
	.complete = lake_vchan_complete,
	.wait = lake_vchan_wait,
};

/* ------------------------------------------------------------------------ */
/* Sessions                                                                 */

static __u32 lake_vchan_new_session(__u32 last)
{
	__u32 s = 0;

	while (!s || s == last) {
		if (getrandom(&s, sizeof(s), 0) != sizeof(s))
			s = (__u32)(lake_now_ns() ^ ((__u64)getpid() << 16));
	}
	return s;
}

/*
 * Waits for a guest that is laid out and not served; false on a stop.  A
 * header that is not LAKE's, or of another version, is reported once per
 * epoch of the guest, and waited out.
 */
static bool lake_vchan_wait_guest(struct lake_vchan *v)
{
	__u32 reported = 0;
	bool told = false;

	while (!lake_vchan_stop_asked(v)) {
		struct lake_ivshmem_hdr *h = v->hdr;
		__u32 state = LAKE_LD(h->guest_state), epoch = LAKE_LD(h->guest_epoch);

		if (LAKE_LD(h->magic) == LAKE_IVSHMEM_MAGIC &&
		    (state == LAKE_IVSHMEM_GUEST_READY || state == LAKE_IVSHMEM_GUEST_ATTACHED)) {
			if (LAKE_LD(h->version) == LAKE_IVSHMEM_VERSION &&
			    LAKE_LD(h->proto_version) == LAKE_PROTO_VERSION &&
			    LAKE_LD(h->spec_hash) == LAKE_SPEC_HASH)
				return true;
			if (!told || epoch != reported) {
				lake_warn("%s: the guest's lake.ko is of another build (layout %u, "
					  "protocol %u, spec 0x%016llx; lakeD: %u, %u, 0x%016llx): "
					  "not serving it", v->name, LAKE_LD(h->version),
					  LAKE_LD(h->proto_version),
					  (unsigned long long)LAKE_LD(h->spec_hash),
					  LAKE_IVSHMEM_VERSION, LAKE_PROTO_VERSION,
					  (unsigned long long)LAKE_SPEC_HASH);
				told = true;
				reported = epoch;
			}
		}
		lake_sleep_us(20000);
	}
	return false;
}

/*
 * Offers a new session and waits for the guest's ack; then takes the
 * guest's header once and checks it.  Returns 0 (v->session set, ring
 * ready), 1 (no ack: try again) or -1 (a stop).
 */
static int lake_vchan_offer(struct lake_vchan *v)
{
	struct lake_ivshmem_hdr *h = v->hdr;
	__u64 end = lake_now_ns() + LAKE_VCHAN_OFFER_MS * 1000000ull;
	__u32 s = lake_vchan_new_session(v->session);
	char why[256];

	v->session = 0;
	v->cq_tail = 0;
	LAKE_ST(h->cq_tail, 0);
	LAKE_ST(h->host_proto_version, LAKE_PROTO_VERSION);
	LAKE_ST(h->host_spec_hash, LAKE_SPEC_HASH);
	LAKE_ST(h->host_pid, (__u32)getpid());
	LAKE_ST(h->host_session, s);
	for (;;) {
		if (lake_vchan_stop_asked(v))
			return -1;
		if (LAKE_LD(h->guest_ack) == s &&
		    LAKE_LD(h->guest_state) == LAKE_IVSHMEM_GUEST_ATTACHED)
			break;
		if (lake_now_ns() >= end) {
			LAKE_ST(h->host_session, 0);
			lake_debug("%s: the guest did not take session %08x", v->name, s);
			return 1;
		}
		lake_sleep_us(2000);
	}
	/* Once, into private memory: what is checked is what is used. */
	memcpy(&v->guest, h, sizeof(v->guest));
	v->epoch = v->guest.guest_epoch;
	v->session = s;
	if (lake_vchan_check_layout(&v->guest, v->map, v->size, &v->chan.ring, why, sizeof(why))) {
		lake_warn("%s: the guest's layout is unusable: %s: not serving it", v->name, why);
		LAKE_ST(h->host_session, 0);
		return 1;
	}
	v->cq = (struct lake_completion *)(v->map + v->guest.cq_offset);
	v->cq_entries = v->guest.cq_entries;
	v->guest_beat = LAKE_LD(h->guest_beat);
	v->guest_beat_ns = lake_now_ns();
	v->ended = NULL;
	v->poll_us = LAKE_VCHAN_POLL_MIN_US;
	v->busy_waits = 0;
	return 0;
}

/* Pins the guest's arena if the quota holder grants it.  Returns the bytes pinned. */
static __u64 lake_vchan_pin(struct lake_vchan *v)
{
	__u64 n = v->chan.ring.arena_size;
	char what[320], why[256] = "";

	if (!n || !v->o.pin_ask)
		return 0;
	if (!v->o.pin_ask(v->o.pin_arg, n, why, sizeof(why))) {
		lake_warn("%s: not pinning the guest's %llu MiB arena: %s; its copies run at "
			  "pageable speed", v->name, (unsigned long long)(n >> 20), why);
		return 0;
	}
	snprintf(what, sizeof(what), "%s's arena", v->name);
	if (lake_vendor_pin(v->o.vendor, v->chan.ring.arena, n, what))
		return n;
	v->o.pin_return(v->o.pin_arg, n);
	return 0;
}

static void lake_vchan_unpin(struct lake_vchan *v, __u64 pinned)
{
	if (!pinned)
		return;
	lake_vendor_unpin(v->o.vendor, v->chan.ring.arena);
	v->o.pin_return(v->o.pin_arg, pinned);
}

static void lake_vchan_serve_session(struct lake_vchan *v)
{
	struct lake_serve_opts opts = {
		.spin_us = v->o.spin_us,
		.stop = &v->stopping,
		.threads = v->o.threads,
	};
	struct lake_serve_stats stats = { 0 };
	struct lake_srv_conn_stats cs;
	struct lake_srv_conn *conn;
	__u64 pinned;
	int rc;

	conn = lake_srv_conn_new(&v->o.vendor->vendors, v->chan.ring.arena,
				 v->chan.ring.arena_size);
	if (!conn) {
		lake_err("%s: no memory for the guest's connection", v->name);
		LAKE_ST(v->hdr->host_session, 0);
		return;
	}
	pinned = lake_vchan_pin(v);
	lake_info("%s: serving the guest's lake.ko, session %08x: %u slots, arena %llu MiB%s, "
		  "%u serving thread%s", v->name, v->session, v->chan.ring.nslots,
		  (unsigned long long)(v->chan.ring.arena_size >> 20), pinned ? " (pinned)" : "",
		  opts.threads ? opts.threads : 1, opts.threads > 1 ? "s" : "");
	atomic_store(&v->serving, 1);
	rc = lake_serve(&v->chan, conn, &opts, &stats);
	atomic_store(&v->serving, 0);
	/* lake_serve() stops on lakeD's flag too; the guest's own end is in ended. */
	if (!rc && !v->ended && lake_vchan_stop_asked(v))
		v->ended = "lakeD is stopping";
	/* First the guest learns the session is over, then its resources go. */
	LAKE_ST(v->hdr->host_session, 0);
	lake_srv_conn_stats(conn, &cs);
	lake_srv_conn_free(conn);	/* destroys what the guest left, drops its references */
	lake_vchan_unpin(v, pinned);
	lake_info("%s: session %08x over: %s; served %llu commands (%llu sleeps), freed %u "
		  "resource%s, released %u primary context reference%s, %u threads with state "
		  "(%llu evicted, %llu deferred errors lost)", v->name, v->session,
		  v->ended ? v->ended : rc ? "the guest broke its ring (see above)" : "stopped",
		  (unsigned long long)stats.commands, (unsigned long long)stats.waits, cs.owned,
		  cs.owned == 1 ? "" : "s", cs.refs, cs.refs == 1 ? "" : "s", cs.threads,
		  (unsigned long long)cs.threads_evicted, (unsigned long long)cs.deferred_dropped);
}

static void *lake_vchan_thread(void *arg)
{
	struct lake_vchan *v = arg;

	lake_vendor_bind_thread(v->o.vendor);	/* the primary context, current here */
	/* wait() sleeps 20 us at first: without this, the kernel's default
	 * 50 us of timer slack would make it 70. */
	prctl(PR_SET_TIMERSLACK, 1000ul, 0, 0, 0);
	while (lake_vchan_wait_guest(v)) {
		int r = lake_vchan_offer(v);

		if (r < 0)
			break;
		if (r > 0) {
			if (!lake_vchan_pause(v, LAKE_VCHAN_RETRY_MS))
				break;
			continue;
		}
		lake_vchan_serve_session(v);
		/* Let the guest see the end before the next offer. */
		if (!lake_vchan_pause(v, 2 * LAKE_IVSHMEM_BEAT_MS))
			break;
	}
	LAKE_ST(v->hdr->host_session, 0);
	return NULL;
}

/* lakeD is alive: the guest's callers fail host_timeout_ms after this stops. */
static void *lake_vchan_beat_thread(void *arg)
{
	struct lake_vchan *v = arg;

	while (lake_vchan_pause(v, LAKE_IVSHMEM_BEAT_MS))
		__atomic_fetch_add(&v->hdr->host_beat, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Start and stop                                                           */

int lake_vchan_check_file(int fd, __u64 *size, char *why, size_t whylen)
{
	struct stat st;

	if (fstat(fd, &st)) {
		snprintf(why, whylen, "fstat: %s", strerror(errno));
		return -errno;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "not a regular file");
		return -EINVAL;
	}
	if (!lake_pow2((__u64)st.st_size) || (__u64)st.st_size < LAKE_IVSHMEM_MIN_SIZE ||
	    (__u64)st.st_size > LAKE_VCHAN_MAX_SIZE) {
		snprintf(why, whylen, "%lld bytes: its size must be a power of two from %u MiB to "
			 "%llu GiB (ivshmem's BAR)", (long long)st.st_size,
			 LAKE_IVSHMEM_MIN_SIZE >> 20, LAKE_VCHAN_MAX_SIZE >> 30);
		return -EINVAL;
	}
	*size = (__u64)st.st_size;
	return 0;
}

int lake_vchan_open(const char *path, __u64 *size, char *why, size_t whylen)
{
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW), err;

	if (fd < 0) {
		err = -errno;
		snprintf(why, whylen, "cannot open it: %s (create it before the VM starts, e.g. "
			 "truncate -s 128M %s)", strerror(errno), path);
		return err;
	}
	err = lake_vchan_check_file(fd, size, why, whylen);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

bool lake_vchan_serving(struct lake_vchan *v)
{
	return v && atomic_load(&v->serving);
}

int lake_vchan_start(struct lake_vchan **out, const struct lake_vchan_opts *o)
{
	struct lake_vchan *v;
	sigset_t all, old;
	char why[256];
	__u64 size;
	int err;

	*out = NULL;
	v = calloc(1, sizeof(*v));
	if (!v) {
		close(o->fd);
		return -ENOMEM;
	}
	v->o = *o;
	v->fd = o->fd;
	if (v->o.guest_timeout_ms < 2 * LAKE_IVSHMEM_BEAT_MS)
		v->o.guest_timeout_ms = 2 * LAKE_IVSHMEM_BEAT_MS;
	pthread_mutex_init(&v->lock, NULL);
	snprintf(v->name, sizeof(v->name), "VM %s", o->path);
	/* The supervisor checked it; checking again costs nothing. */
	err = lake_vchan_check_file(v->fd, &size, why, sizeof(why));
	if (err) {
		lake_err("%s: %s", v->name, why);
		goto fail;
	}
	v->size = (size_t)size;
	v->map = mmap(NULL, v->size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->map == MAP_FAILED) {
		err = -errno;
		v->map = NULL;
		lake_err("%s: cannot map it: %s", v->name, strerror(errno));
		goto fail;
	}
	/* Like /dev/lake's VM_DONTCOPY: a process forked from here does not
	 * inherit the guest's memory. */
	if (madvise(v->map, v->size, MADV_DONTFORK)) {
		err = -errno;
		lake_err("%s: madvise(MADV_DONTFORK): %s", v->name, strerror(errno));
		goto fail;
	}
	v->hdr = (struct lake_ivshmem_hdr *)v->map;
	v->chan.name = v->name;
	v->chan.ops = &lake_vchan_ops;
	v->chan.lazy_reports = true;	/* lake.ko's callers read done_seq while they spin */
	/* A session a process before us left offered is over; the file is
	 * LAKE's (lake.ko takes a device with this, or a zeroed one). */
	LAKE_ST(v->hdr->host_session, 0);
	LAKE_ST(v->hdr->host_magic, LAKE_IVSHMEM_MAGIC);

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = -pthread_create(&v->beat_thread, NULL, lake_vchan_beat_thread, v);
	if (!err) {
		v->beat_started = true;
		err = -pthread_create(&v->thread, NULL, lake_vchan_thread, v);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		lake_err("%s: cannot start its threads: %s", v->name, strerror(-err));
		goto fail;
	}
	lake_info("%s: waiting for the guest's lake.ko (%zu MiB shared; guest timeout %u ms)",
		  v->name, v->size >> 20, v->o.guest_timeout_ms);
	*out = v;
	return 0;
fail:
	if (v->beat_started) {
		atomic_store(&v->stopping, 1);
		pthread_join(v->beat_thread, NULL);
	}
	if (v->map)
		munmap(v->map, v->size);
	close(v->fd);
	pthread_mutex_destroy(&v->lock);
	free(v);
	return err;
}

void lake_vchan_stop(struct lake_vchan *v)
{
	if (!v)
		return;
	atomic_store(&v->stopping, 1);
	pthread_join(v->thread, NULL);
	pthread_join(v->beat_thread, NULL);
	munmap(v->map, v->size);
	close(v->fd);
	pthread_mutex_destroy(&v->lock);
	free(v);
}
