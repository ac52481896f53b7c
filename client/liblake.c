// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * liblake: the user-space transport under the generated client stubs.
 *
 * The user-space twin of lake.ko's channel (kmod/lake_chan.c): the same slot
 * life (free -> reserved -> sync/async in flight -> free, or abandoned by a
 * caller that timed out), a free stack with backpressure, MPSC publication
 * to the submission queue under a mutex, replies matched per slot by
 * sequence number, spin-then-sleep waits, and "unavailable" for every call
 * in flight when lakeD goes away.  What the kernel does with wait queues and
 * the COMPLETE ioctl happens here through the memfd shared with lakeD: see
 * include/lake/lake_uring.h for the layout and the wake-up protocol.
 *
 * Connection: lazily at the first call, to lakeD's UNIX socket; retried on
 * later calls after a failure, so a daemon started (or restarted) later is
 * picked up.  The memfd is created once per process and re-sent on every
 * connection, so arena buffers stay valid across daemon restarts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include "lake_call.h"
#include "lake_proto_gen.h"
#include "lake_uring.h"
#include "lake_arena.h"
#include "liblake.h"

#define LAKE_DEFAULT_NSLOTS	128u
#define LAKE_DEFAULT_ARENA_MB	64u
#define LAKE_DEFAULT_SPIN_US	200u
#define LAKE_DEFAULT_TIMEOUT_MS	10000u
#define LAKE_MAX_SPIN_US	1000000u

/* A sleeping caller looks at the socket this often: how soon a dead lakeD
 * is noticed when nothing else tells us. */
#define LAKE_LIVENESS_NS	(50ull * 1000 * 1000)
/* How long lakeD may take to answer the hello. */
#define LAKE_HELLO_TIMEOUT_MS	5000
/* After lakeD refused us (not merely absent), retry at most this often. */
#define LAKE_REFUSED_RETRY_NS	(1000ull * 1000 * 1000)

enum lake_uslot_state {
	LAKE_US_FREE = 0,
	LAKE_US_RESERVED,	/* owned by a caller, not published */
	LAKE_US_SYNC,		/* published; its caller waits */
	LAKE_US_ASYNC,		/* published; reclaimed when its completion shows */
	LAKE_US_ABANDONED,	/* published; its caller gave up waiting */
};

/* What liblake keeps per slot, in private memory: lakeD never sees it. */
struct lake_uslot {
	__u32 seq;
	__u8 state;		/* enum lake_uslot_state; under g.lock */
	__u8 failed;		/* lakeD went away while in flight (atomic) */
	__u8 nheld;		/* arena staging held for an abandoned call */
	struct {
		void *p;
		__u64 len;
	} held[LAKE_MAX_STAGED];	/* freed when the slot is */
};

static const struct lake_transport_ops lake_user_ops;

static struct lake_client {
	pthread_mutex_t init_lock;
	int ready;			/* 0: not yet; 1: ready; -1: cannot work (atomic) */

	/* settings (environment) */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	__u32 nslots;
	__u64 arena_bytes;
	__u64 spin_ns;
	__u64 timeout_ns;		/* 0: forever */

	/* the region (the memfd) */
	int memfd;
	__u8 *map;
	struct lake_uhello layout;
	struct lake_ring_ctrl *ctrl;
	struct lake_uring_ctrl *uctrl;
	__u32 *sq;
	struct lake_uring_done *done;
	__u8 *slots;
	struct lake_arena arena;
	struct lake_transport transport;

	/* slots and the connection: under lock */
	pthread_mutex_t lock;
	struct lake_uslot *us;
	__u32 *free_stack, nfree;
	__u32 *unatt, nunatt;		/* async and abandoned slots in flight */
	unsigned int slot_waiters;
	__u32 tail;			/* our producer counter (ctrl->sq_tail is its copy) */
	__u32 next_seq;
	bool connected;
	int sock;
	__u32 epoch;			/* bumped per connection */
	__u32 client_no;		/* lakeD's number for us */
	__u32 server_pid;		/* the lakeD process serving us */

	/* connecting: conn_lock is held across the hello */
	pthread_mutex_t conn_lock;
	bool down_reported;		/* a failure was printed; print the recovery */
	__u64 retry_after_ns;		/* after a refusal */

	struct lake_client_stats st;	/* atomics */
} g = {
	.init_lock = PTHREAD_MUTEX_INITIALIZER,
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.conn_lock = PTHREAD_MUTEX_INITIALIZER,
	.memfd = -1,
	.sock = -1,
	.transport = { .ops = &lake_user_ops },
};

static __thread __u32 lake_tid __attribute__((tls_model("initial-exec")));
static pthread_once_t lake_atfork_once = PTHREAD_ONCE_INIT;
/* Set on a thread's first call: its destructor tells lakeD the thread is gone. */
static pthread_key_t lake_thread_key;
/* liblake's own call (not the program's): not in the statistics. */
static __thread bool lake_own_call;
static pthread_once_t lake_thread_key_once = PTHREAD_ONCE_INIT;

#define LAKE_STAT_INC(f)	__atomic_fetch_add(&g.st.f, 1, __ATOMIC_RELAXED)

/* Shared futexes: the words live in the memfd, lakeD waits and wakes too. */
static int lake_futex_wait(__u32 *word, __u32 val, __u64 timeout_ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(timeout_ns / 1000000000ull),
		.tv_nsec = (long)(timeout_ns % 1000000000ull),
	};

	if (syscall(SYS_futex, word, FUTEX_WAIT, val, &ts, NULL, 0) == 0)
		return 0;
	return -errno;
}

static void lake_futex_wake(__u32 *word, int n)
{
	syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);
}

/* One line on stderr per episode of trouble (cleared once connected). */
static void lake_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void lake_report(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	if (__atomic_exchange_n(&g.down_reported, true, __ATOMIC_RELAXED))
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* nowhere to say it */
	}
}

/* ------------------------------------------------------------------------ */
/* Settings and the region                                                  */

static unsigned long long lake_env_num(const char *name, unsigned long long def,
				       unsigned long long max, const char *what)
{
	const char *s = getenv(name);
	unsigned long long v;
	char *end;

	if (!s || !*s)
		return def;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end || errno || v > max) {
		fprintf(stderr, "liblake: %s=%s is not %s (0..%llu); using %llu\n", name, s, what,
			max, def);
		return def;
	}
	return v;
}

static void lake_settings(void)
{
	const char *sock = getenv("LAKE_SOCKET");
	unsigned long long n;

	if (!sock || !*sock)
		sock = LAKE_URING_DEFAULT_SOCKET;
	if (strlen(sock) >= sizeof(g.path)) {
		fprintf(stderr, "liblake: LAKE_SOCKET is longer than %zu bytes; using %s\n",
			sizeof(g.path) - 1, LAKE_URING_DEFAULT_SOCKET);
		sock = LAKE_URING_DEFAULT_SOCKET;
	}
	snprintf(g.path, sizeof(g.path), "%s", sock);
	n = lake_env_num("LAKE_NSLOTS", LAKE_DEFAULT_NSLOTS, LAKE_URING_MAX_SLOTS,
			 "a number of command slots");
	if (!n || (n & (n - 1))) {
		fprintf(stderr, "liblake: LAKE_NSLOTS=%llu is not a power of two in 1..%u; "
			"using %u\n", n, LAKE_URING_MAX_SLOTS, LAKE_DEFAULT_NSLOTS);
		n = LAKE_DEFAULT_NSLOTS;
	}
	g.nslots = (__u32)n;
	g.arena_bytes = lake_env_num("LAKE_ARENA_MB", LAKE_DEFAULT_ARENA_MB,
				     LAKE_URING_MAX_ARENA >> 20, "a size in MiB") << 20;
	g.spin_ns = lake_env_num("LAKE_SPIN_US", LAKE_DEFAULT_SPIN_US, LAKE_MAX_SPIN_US,
				 "a number of microseconds") * 1000ull;
	g.timeout_ns = lake_env_num("LAKE_TIMEOUT_MS", LAKE_DEFAULT_TIMEOUT_MS,
				    24ull * 3600 * 1000, "a number of milliseconds") * 1000000ull;
}

static void lake_atfork_prepare(void);
static void lake_atfork_parent(void);
static void lake_atfork_child(void);

static void lake_atfork_register(void)
{
	pthread_atfork(lake_atfork_prepare, lake_atfork_parent, lake_atfork_child);
}

/* Creates the region; returns 0 or a negative errno (with *what). */
static int lake_init(const char **what)
{
	struct lake_uhello *l = &g.layout;
	__u32 i;
	int err;

	pthread_once(&lake_atfork_once, lake_atfork_register);
	lake_settings();
	if (lake_uring_layout(l, g.nslots, g.arena_bytes)) {
		*what = "layout";
		return -EINVAL;
	}
	g.memfd = memfd_create("lake-uring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (g.memfd < 0) {
		*what = "memfd_create";
		return -errno;
	}
	if (ftruncate(g.memfd, (off_t)l->map_size)) {
		*what = "ftruncate";
		goto fail_errno;
	}
	/* lakeD maps it: it must not shrink under lakeD (SIGBUS). */
	if (fcntl(g.memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) {
		*what = "sealing the memfd";
		goto fail_errno;
	}
	g.map = mmap(NULL, l->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, g.memfd, 0);
	if (g.map == MAP_FAILED) {
		g.map = NULL;
		*what = "mmap";
		goto fail_errno;
	}
	/* A forked child gets a ring of its own; the arena stays shared (as
	 * any MAP_SHARED memory), so its buffers remain readable there. */
	madvise(g.map, l->arena_offset, MADV_DONTFORK);
	if (l->arena_size)
		madvise(g.map + l->arena_offset, l->arena_size, MADV_HUGEPAGE);	/* best effort */
	g.ctrl = (struct lake_ring_ctrl *)g.map;
	g.uctrl = (struct lake_uring_ctrl *)(g.map + l->uctrl_offset);
	g.sq = (__u32 *)(g.map + l->sq_offset);
	g.done = (struct lake_uring_done *)(g.map + l->done_offset);
	g.slots = g.map + l->slots_offset;
	g.us = calloc(g.nslots, sizeof(*g.us));
	g.free_stack = calloc(g.nslots, sizeof(*g.free_stack));
	g.unatt = calloc(g.nslots, sizeof(*g.unatt));
	if (!g.us || !g.free_stack || !g.unatt) {
		*what = "allocating slot state";
		err = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < g.nslots; i++)
		g.free_stack[i] = g.nslots - 1 - i;
	g.nfree = g.nslots;
	if (lake_arena_init(&g.arena, l->arena_size ? g.map + l->arena_offset : NULL,
			    l->arena_size)) {
		*what = "the arena allocator";
		err = -ENOMEM;
		goto fail;
	}
	lake_transport_init(&g.transport, &lake_user_ops);
	g.st.nslots = g.nslots;
	g.st.arena_size = l->arena_size;
	return 0;
fail_errno:
	err = -errno;
fail:
	if (g.map)
		munmap(g.map, l->map_size);
	g.map = NULL;
	close(g.memfd);
	g.memfd = -1;
	free(g.us);
	free(g.free_stack);
	free(g.unatt);
	g.us = NULL;
	g.free_stack = g.unatt = NULL;
	return err;
}

static bool lake_ready(void)
{
	int r = __atomic_load_n(&g.ready, __ATOMIC_ACQUIRE);
	const char *what = "";

	if (r)
		return r > 0;
	pthread_mutex_lock(&g.init_lock);
	r = g.ready;
	if (!r) {
		int err = lake_init(&what);

		if (err) {
			fprintf(stderr, "liblake: cannot create the shared ring (%s, %u slots, "
				"%llu MiB arena): %s; every call fails with "
				"CUDA_ERROR_DEVICE_UNAVAILABLE\n", what, g.nslots,
				(unsigned long long)(g.arena_bytes >> 20), strerror(-err));
			r = -1;
		} else {
			r = 1;
		}
		__atomic_store_n(&g.ready, r, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&g.init_lock);
	return r > 0;
}

/* ------------------------------------------------------------------------ */
/* fork(): the child starts afresh                                          */

static bool lake_fork_locked;	/* prepare took the locks (liblake was ready) */

/* fork() sees liblake's state consistent: no lock held mid-update. */
static void lake_atfork_prepare(void)
{
	pthread_mutex_lock(&g.init_lock);
	lake_fork_locked = __atomic_load_n(&g.ready, __ATOMIC_ACQUIRE) > 0;
	if (!lake_fork_locked)
		return;
	pthread_mutex_lock(&g.conn_lock);
	pthread_mutex_lock(&g.lock);
	pthread_mutex_lock(&g.arena.lock);
	pthread_mutex_lock(&g.transport.kparams.lock);
}

static void lake_atfork_parent(void)
{
	if (lake_fork_locked) {
		pthread_mutex_unlock(&g.transport.kparams.lock);
		pthread_mutex_unlock(&g.arena.lock);
		pthread_mutex_unlock(&g.lock);
		pthread_mutex_unlock(&g.conn_lock);
	}
	pthread_mutex_unlock(&g.init_lock);
}

/*
 * The child must not use the parent's ring (its ring pages are not even
 * there: MADV_DONTFORK) or its connection: it forgets both and connects
 * with a region of its own at its first call.  The parent's arena stays
 * mapped in the child, shared, but is no longer the child's arena.
 */
static void lake_atfork_child(void)
{
	lake_tid = 0;
	if (!lake_fork_locked) {
		g.ready = 0;	/* also after a failed init: the child tries again */
		pthread_mutex_unlock(&g.init_lock);
		return;
	}
	/* This thread took every lock in prepare: release them, then drop the
	 * parent's ring, connection and allocator state. */
	pthread_mutex_unlock(&g.transport.kparams.lock);
	pthread_mutex_unlock(&g.arena.lock);
	pthread_mutex_unlock(&g.lock);
	pthread_mutex_unlock(&g.conn_lock);
	lake_arena_destroy(&g.arena);
	lake_transport_destroy(&g.transport);	/* the learned kernel layouts */
	if (g.sock >= 0)
		close(g.sock);
	close(g.memfd);
	free(g.us);
	free(g.free_stack);
	free(g.unatt);
	memset(&g.path, 0, sizeof(g) - offsetof(struct lake_client, path));
	g.memfd = -1;
	g.sock = -1;
	g.transport.ops = &lake_user_ops;
	pthread_mutex_init(&g.lock, NULL);
	pthread_mutex_init(&g.conn_lock, NULL);
	g.ready = 0;
	pthread_mutex_unlock(&g.init_lock);
}

/* ------------------------------------------------------------------------ */
/* The connection                                                           */

/* Slot @idx goes back on the free stack, with what an abandoned call
 * left staged in the arena (lakeD is done with both).  Lock held. */
static void lake_slot_free_locked(__u32 idx)
{
	struct lake_uslot *u = &g.us[idx];

	while (u->nheld) {
		u->nheld--;
		lake_arena_free(&g.arena, u->held[u->nheld].p, u->held[u->nheld].len);
	}
	u->state = LAKE_US_FREE;
	g.free_stack[g.nfree++] = idx;
}

/*
 * A caller gives up on its published command: lakeD may still read the
 * buffers staged for it in the arena and write the reply there, so they stay
 * allocated until the slot is freed (late completion, or lakeD gone), not
 * handed back when the caller returns, where another caller could get them
 * and receive the late reply.  (As lake.ko does.)  Lock held.
 */
static void lake_slot_hold_staging(struct lake_uslot *u, struct lake_call *call)
{
	unsigned int i;

	for (i = 0; i < call->nstaged && u->nheld < LAKE_MAX_STAGED; i++) {
		struct lake_staged *st = &call->staged[i];

		if (!st->arena_len)
			continue;
		u->held[u->nheld].p = st->stage;
		u->held[u->nheld].len = st->arena_len;
		u->nheld++;
		st->arena_len = 0;	/* not lake_call_end()'s to free any more */
	}
}

/* lakeD went away (its socket hung up).  Lock held. */
static void lake_mark_dead(__u32 epoch, const char *why)
{
	__u32 i;

	if (!g.connected || g.epoch != epoch)
		return;
	g.connected = false;
	for (i = 0; i < g.nslots; i++) {
		struct lake_uslot *u = &g.us[i];

		switch (u->state) {
		case LAKE_US_SYNC:
			__atomic_store_n(&u->failed, 1, __ATOMIC_RELEASE);
			lake_futex_wake(&g.done[i].seq, INT_MAX);
			break;
		case LAKE_US_ASYNC:
		case LAKE_US_ABANDONED:
			lake_slot_free_locked(i);
			break;
		default:
			break;	/* free, or owned by a caller that frees it */
		}
	}
	g.nunatt = 0;
	close(g.sock);
	g.sock = -1;
	/* Callers waiting for a slot look again (and find lakeD gone). */
	__atomic_fetch_add(&g.uctrl->cq_count, 1, __ATOMIC_RELEASE);
	lake_futex_wake(&g.uctrl->cq_count, INT_MAX);
	lake_report("liblake: lakeD at %s %s; calls fail with CUDA_ERROR_DEVICE_UNAVAILABLE "
		    "until it is back", g.path, why);
}

/* Has lakeD hung up?  Marks it dead if so.  Lock held. */
static void lake_check_alive_locked(__u32 epoch)
{
	struct pollfd p;

	if (!g.connected || g.epoch != epoch)
		return;
	p.fd = g.sock;
	p.events = POLLRDHUP;
	p.revents = 0;
	if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL)))
		lake_mark_dead(epoch, "went away (its socket closed)");
}

static void lake_check_alive(__u32 epoch)
{
	pthread_mutex_lock(&g.lock);
	lake_check_alive_locked(epoch);
	pthread_mutex_unlock(&g.lock);
}

static int lake_send_hello(int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = &g.layout, .iov_len = sizeof(g.layout) };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c;
	ssize_t n;

	g.layout.spec_hash = LAKE_SPEC_HASH;
	memset(&u, 0, sizeof(u));
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &g.memfd, sizeof(int));
	do
		n = sendmsg(fd, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == (ssize_t)sizeof(g.layout) ? 0 : -EIO;
}

/* Reads lakeD's answer; returns 0 when served, else a negative errno with @why. */
static int lake_read_reply(int fd, struct lake_uhello_reply *r, bool *refused, char *why,
			   size_t whylen)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	__u64 limit = LAKE_HELLO_TIMEOUT_MS * 1000000ull;
	__u64 end;
	ssize_t n;

	*refused = false;
	if (g.timeout_ns && g.timeout_ns < limit)
		limit = g.timeout_ns;	/* never wait longer than a call would */
	end = lake_now_ns() + limit;

	for (;;) {
		__u64 now = lake_now_ns();
		int rc;

		if (now >= end) {
			snprintf(why, whylen, "no answer to the hello in %llu ms (is lakeD stopped?)",
				 (unsigned long long)(limit / 1000000ull));
			return -ETIMEDOUT;
		}
		rc = poll(&p, 1, (int)((end - now) / 1000000ull) + 1);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0) {
			snprintf(why, whylen, "poll: %s", strerror(errno));
			return -errno;
		}
		if (rc > 0)
			break;
	}
	do
		n = recv(fd, r, sizeof(*r), MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE))) {
		snprintf(why, whylen, "it closed the connection without an answer");
		return -ECONNRESET;
	}
	if (n < 0) {
		snprintf(why, whylen, "reading its answer: %s", strerror(errno));
		return -errno;
	}
	if (n != (ssize_t)sizeof(*r) || r->magic != LAKE_UREPLY_MAGIC) {
		snprintf(why, whylen, "malformed answer to the hello (%zd bytes): not a lakeD "
			 "of LAKE user ring version %u?", n, LAKE_URING_VERSION);
		return -EPROTO;
	}
	r->reason[sizeof(r->reason) - 1] = 0;
	if (r->status) {
		*refused = true;
		snprintf(why, whylen, "%s", r->reason[0] ? r->reason : strerror(-r->status));
		return r->status < 0 ? r->status : -EPROTO;
	}
	return 0;
}

/* Connects (if nobody did meanwhile).  Returns LAKE_OK or LAKE_E_UNAVAILABLE. */
static int lake_connect(void)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct lake_uhello_reply reply;
	char why[LAKE_UREPLY_REASON + 64];
	int fd = -1, err;
	bool connected, refused;

	pthread_mutex_lock(&g.conn_lock);
	pthread_mutex_lock(&g.lock);
	connected = g.connected;
	pthread_mutex_unlock(&g.lock);
	if (connected)
		goto ok;
	if (g.retry_after_ns && lake_now_ns() < g.retry_after_ns)
		goto fail;
	g.retry_after_ns = 0;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		lake_report("liblake: socket: %s; calls fail with CUDA_ERROR_DEVICE_UNAVAILABLE",
			    strerror(errno));
		goto fail;
	}
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", g.path);
	while (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		if (errno == EINTR)
			continue;
		lake_report("liblake: cannot reach lakeD at %s: %s; calls fail with "
			    "CUDA_ERROR_DEVICE_UNAVAILABLE until it runs (LAKE_SOCKET names "
			    "another socket)", g.path, strerror(errno));
		goto fail;
	}
	/* Not connected: nobody publishes.  A fresh ring for the new lakeD;
	 * slots still owned by callers of the old one stay theirs. */
	pthread_mutex_lock(&g.lock);
	g.tail = 0;
	__atomic_store_n(&g.ctrl->sq_tail, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&g.ctrl->sq_head, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&g.uctrl->daemon_sleeping, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&g.uctrl->slot_waiters, g.slot_waiters ? 1 : 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&g.lock);
	/* Handles (and so learned layouts) belong to one lakeD: a new one
	 * issues its own, which may reuse the old values. */
	lake_transport_reset(&g.transport);

	err = lake_send_hello(fd);
	if (err && err != -EPIPE && err != -ECONNRESET) {
		lake_report("liblake: cannot send the hello to lakeD at %s: %s", g.path,
			    strerror(-err));
		goto fail;
	}
	/* lakeD may have answered (a refusal says why) and closed before our
	 * hello went out: its answer is still there to read. */
	err = lake_read_reply(fd, &reply, &refused, why, sizeof(why));
	if (err) {
		lake_report("liblake: lakeD at %s %s: %s; calls fail with "
			    "CUDA_ERROR_DEVICE_UNAVAILABLE", g.path,
			    refused ? "refused this client" : "did not take this client", why);
		g.retry_after_ns = lake_now_ns() + LAKE_REFUSED_RETRY_NS;
		goto fail;
	}
	pthread_mutex_lock(&g.lock);
	g.sock = fd;
	g.connected = true;
	g.epoch++;
	g.client_no = reply.client;
	g.server_pid = reply.server_pid;
	pthread_mutex_unlock(&g.lock);
	LAKE_STAT_INC(connects);
	if (g.down_reported)
		fprintf(stderr, "liblake: connected to lakeD at %s (client %u)\n", g.path,
			reply.client);
	g.down_reported = false;
ok:
	pthread_mutex_unlock(&g.conn_lock);
	return LAKE_OK;
fail:
	if (fd >= 0)
		close(fd);
	pthread_mutex_unlock(&g.conn_lock);
	return LAKE_E_UNAVAILABLE;
}

/* ------------------------------------------------------------------------ */
/* The transport                                                            */

/* Frees async and abandoned slots whose completion showed up.  Lock held. */
static void lake_reap(void)
{
	__u32 i = 0;

	while (i < g.nunatt) {
		__u32 idx = g.unatt[i];

		if (__atomic_load_n(&g.done[idx].seq, __ATOMIC_ACQUIRE) == g.us[idx].seq) {
			lake_slot_free_locked(idx);
			g.unatt[i] = g.unatt[--g.nunatt];
		} else {
			i++;
		}
	}
}

static void lake_slot_waiters_flag(void)
{
	__atomic_store_n(&g.uctrl->slot_waiters, g.slot_waiters ? 1 : 0, __ATOMIC_RELAXED);
}

static int lake_u_begin(struct lake_transport *t, struct lake_call *call)
{
	__u64 deadline = 0;
	bool waited = false;
	__u32 idx;

	(void)t;
	if (!lake_ready()) {
		LAKE_STAT_INC(unavailable);
		return LAKE_E_UNAVAILABLE;
	}
	pthread_mutex_lock(&g.lock);
	for (;;) {
		__u64 now, slice;
		__u32 epoch, v;
		int rc;

		if (!g.connected) {
			pthread_mutex_unlock(&g.lock);
			if (lake_connect()) {
				LAKE_STAT_INC(unavailable);
				return LAKE_E_UNAVAILABLE;
			}
			pthread_mutex_lock(&g.lock);
			continue;
		}
		if (!g.nfree && g.nunatt)
			lake_reap();
		if (g.nfree)
			break;
		/* Every slot is in flight: wait for one (backpressure).  Freed
		 * sync slots and async completions both bump cq_count. */
		now = lake_now_ns();
		if (!waited) {
			waited = true;
			LAKE_STAT_INC(slot_waits);
			deadline = g.timeout_ns ? now + g.timeout_ns : 0;
		}
		if (deadline && now >= deadline) {
			pthread_mutex_unlock(&g.lock);
			LAKE_STAT_INC(timeouts);
			return LAKE_E_TIMEOUT;
		}
		g.slot_waiters++;
		lake_slot_waiters_flag();
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		v = __atomic_load_n(&g.uctrl->cq_count, __ATOMIC_ACQUIRE);
		lake_reap();
		if (g.nfree) {
			g.slot_waiters--;
			lake_slot_waiters_flag();
			break;
		}
		epoch = g.epoch;
		pthread_mutex_unlock(&g.lock);
		slice = LAKE_LIVENESS_NS;
		if (deadline && deadline - now < slice)
			slice = deadline - now;
		rc = lake_futex_wait(&g.uctrl->cq_count, v, slice);
		pthread_mutex_lock(&g.lock);
		g.slot_waiters--;
		lake_slot_waiters_flag();
		if (rc == -ETIMEDOUT)
			lake_check_alive_locked(epoch);
	}
	idx = g.free_stack[--g.nfree];
	g.us[idx].state = LAKE_US_RESERVED;
	g.us[idx].nheld = 0;
	if (++g.next_seq == 0)	/* 0 is what an unused done word holds */
		++g.next_seq;
	g.us[idx].seq = g.next_seq;
	__atomic_store_n(&g.us[idx].failed, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&g.lock);
	__atomic_store_n(&g.done[idx].waiting, 0, __ATOMIC_RELAXED);
	call->slot = g.slots + (size_t)idx * LAKE_SLOT_SIZE;
	call->slot_index = idx;
	call->seq = g.us[idx].seq;
	return LAKE_OK;
}

/* Waits for the reply of the sync call in slot @idx.  */
static int lake_wait_reply(struct lake_call *call, __u32 epoch)
{
	const __u32 idx = call->slot_index, seq = call->seq;
	struct lake_uring_done *d = &g.done[idx];
	struct lake_uslot *u = &g.us[idx];
	__u64 start = lake_now_ns(), deadline, now;
	unsigned int spins = 0;

	/* Spin: a round trip to a spinning lakeD is far cheaper than two
	 * wake-ups. */
	for (;;) {
		if (__atomic_load_n(&d->seq, __ATOMIC_ACQUIRE) == seq)
			return LAKE_OK;
		if (__atomic_load_n(&u->failed, __ATOMIC_ACQUIRE))
			goto failed;
		if (!(++spins & 31) && lake_now_ns() - start >= g.spin_ns)
			break;
		lake_cpu_relax();
	}
	LAKE_STAT_INC(sleeps);
	deadline = g.timeout_ns ? start + g.timeout_ns : 0;
	for (;;) {
		__u64 slice = LAKE_LIVENESS_NS;
		__u32 v;
		int rc;

		__atomic_store_n(&d->waiting, 1, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		v = __atomic_load_n(&d->seq, __ATOMIC_ACQUIRE);
		if (v == seq)
			return LAKE_OK;
		if (__atomic_load_n(&u->failed, __ATOMIC_ACQUIRE))
			goto failed;
		now = lake_now_ns();
		if (deadline && now >= deadline) {
			bool gave_up;

			pthread_mutex_lock(&g.lock);
			gave_up = __atomic_load_n(&d->seq, __ATOMIC_ACQUIRE) != seq &&
				  !__atomic_load_n(&u->failed, __ATOMIC_ACQUIRE);
			if (gave_up) {	/* in flight until lakeD answers or goes */
				u->state = LAKE_US_ABANDONED;
				lake_slot_hold_staging(u, call);
				g.unatt[g.nunatt++] = idx;
			}
			pthread_mutex_unlock(&g.lock);
			if (gave_up) {
				LAKE_STAT_INC(timeouts);
				return LAKE_E_TIMEOUT;
			}
			continue;
		}
		if (deadline && deadline - now < slice)
			slice = deadline - now;
		rc = lake_futex_wait(&d->seq, v, slice);
		if (rc == -ETIMEDOUT && __atomic_load_n(&d->seq, __ATOMIC_ACQUIRE) != seq)
			lake_check_alive(epoch);
	}
failed:
	/* A reply that made it before lakeD went away still counts. */
	if (__atomic_load_n(&d->seq, __ATOMIC_ACQUIRE) == seq)
		return LAKE_OK;
	LAKE_STAT_INC(unavailable);
	return LAKE_E_UNAVAILABLE;
}

static int lake_u_submit(struct lake_transport *t, struct lake_call *call)
{
	const __u32 idx = call->slot_index;
	__u32 epoch;

	(void)t;
	pthread_mutex_lock(&g.lock);
	if (!g.connected) {
		pthread_mutex_unlock(&g.lock);
		LAKE_STAT_INC(unavailable);
		return LAKE_E_UNAVAILABLE;
	}
	if (call->async) {
		g.us[idx].state = LAKE_US_ASYNC;
		g.unatt[g.nunatt++] = idx;
	} else {
		g.us[idx].state = LAKE_US_SYNC;
	}
	__atomic_store_n(&g.sq[g.tail % g.nslots], idx, __ATOMIC_RELAXED);
	g.tail++;
	/* The command and its queue entry are visible before the new tail. */
	__atomic_store_n(&g.ctrl->sq_tail, g.tail, __ATOMIC_RELEASE);
	epoch = g.epoch;
	pthread_mutex_unlock(&g.lock);

	if (!lake_own_call)
		LAKE_STAT_INC(calls);
	/* Either lakeD sees the new tail before it sleeps, or we see it
	 * sleeping (it sets the flag, fences, then looks at the tail). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&g.uctrl->daemon_sleeping, __ATOMIC_RELAXED))
		lake_futex_wake(&g.ctrl->sq_tail, 1);
	if (call->async) {
		if (!lake_own_call)
			LAKE_STAT_INC(async_calls);
		return LAKE_OK;
	}
	return lake_wait_reply(call, epoch);
}

static void lake_u_end(struct lake_transport *t, struct lake_call *call)
{
	const __u32 idx = call->slot_index;
	struct lake_uslot *u = &g.us[idx];
	bool wake = false;

	(void)t;
	pthread_mutex_lock(&g.lock);
	/* A published async slot is freed by its completion, maybe already
	 * reused: touch it only if it is still this call's and ours. */
	if (u->seq == call->seq &&
	    (u->state == LAKE_US_RESERVED || u->state == LAKE_US_SYNC)) {
		lake_slot_free_locked(idx);
		wake = g.slot_waiters > 0;
	}
	pthread_mutex_unlock(&g.lock);
	if (wake) {
		__atomic_fetch_add(&g.uctrl->cq_count, 1, __ATOMIC_RELEASE);
		lake_futex_wake(&g.uctrl->cq_count, 1);
	}
}

static bool lake_u_arena_find(struct lake_transport *t, const void *p, __u64 len, __u64 *off)
{
	(void)t;
	if (lake_arena_find(&g.arena, p, len, off)) {
		LAKE_STAT_INC(zero_copy);
		return true;
	}
	LAKE_STAT_INC(staged);
	return false;
}

static void *lake_u_arena_alloc(struct lake_transport *t, __u64 len, __u64 *off)
{
	void *p = lake_arena_alloc(&g.arena, len, off);

	(void)t;
	if (p)
		LAKE_STAT_INC(staged_arena);
	return p;
}

static void lake_u_arena_free(struct lake_transport *t, void *p, __u64 len)
{
	(void)t;
	lake_arena_free(&g.arena, p, len);
}

/*
 * A thread that made calls exits: lakeD forgets what it kept for it (its
 * deferred errors, its current context) at once, instead of when its table
 * needs the room.  One async null call, only while connected.
 */
static void lake_thread_gone(void *unused)
{
	struct lake_call c;
	bool connected;

	(void)unused;
	pthread_mutex_lock(&g.lock);
	connected = g.connected;
	pthread_mutex_unlock(&g.lock);
	if (!connected || !lake_tid)
		return;
	if (lake_call_begin(&c, &g.transport, LAKE_API_NOP, sizeof(struct lake_nop),
			    sizeof(struct lake_nop), true))
		return;
	lake_call_hdr(&c)->flags |= LAKE_MSG_THREAD_GONE;
	lake_own_call = true;
	lake_call_end(&c, lake_call_submit(&c));
	lake_own_call = false;
}

static void lake_thread_key_make(void)
{
	pthread_key_create(&lake_thread_key, lake_thread_gone);
}

static __u32 lake_u_client_id(struct lake_transport *t)
{
	(void)t;
	/* Deferred async errors and the current context belong to the calling thread. */
	if (!lake_tid) {
		lake_tid = (__u32)syscall(SYS_gettid);
		pthread_once(&lake_thread_key_once, lake_thread_key_make);
		pthread_setspecific(lake_thread_key, (void *)1);
	}
	return lake_tid;
}

static const struct lake_transport_ops lake_user_ops = {
	.begin = lake_u_begin,
	.submit = lake_u_submit,
	.end = lake_u_end,
	.arena_find = lake_u_arena_find,
	.arena_alloc = lake_u_arena_alloc,
	.arena_free = lake_u_arena_free,
	.client_id = lake_u_client_id,
};

struct lake_transport *lake_transport_get(void)
{
	return &g.transport;
}

/* ------------------------------------------------------------------------ */
/* The API of liblake.h                                                     */

void *lake_shm_alloc(size_t size)
{
	if (!size || !lake_ready())
		return NULL;
	return lake_arena_alloc(&g.arena, size, NULL);
}

void lake_shm_free(void *ptr, size_t size)
{
	static int warned;

	if (!ptr || __atomic_load_n(&g.ready, __ATOMIC_ACQUIRE) <= 0)
		return;
	if (lake_arena_free(&g.arena, ptr, size) &&
	    !__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
		fprintf(stderr, "liblake: lake_shm_free(%p, %zu): not an allocation of this "
			"process's arena (double free, wrong size, or from before fork()); "
			"ignored\n", ptr, size);
}

bool lake_shm_contains(const void *ptr, size_t len)
{
	if (__atomic_load_n(&g.ready, __ATOMIC_ACQUIRE) <= 0)
		return false;
	return lake_arena_find(&g.arena, ptr, len, NULL);
}

int lake_null_call(void)
{
	static __u64 cookie;

	return lake_status_errno(lake_call_nop(lake_transport_get(),
					       __atomic_add_fetch(&cookie, 1, __ATOMIC_RELAXED)));
}

void lake_client_stats(struct lake_client_stats *st)
{
	const __u64 *src = (const __u64 *)&g.st;
	__u64 *dst = (__u64 *)st;
	size_t i;

	lake_ready();
	for (i = 0; i < offsetof(struct lake_client_stats, arena_used) / sizeof(__u64); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	pthread_mutex_lock(&g.arena.lock);
	st->arena_used = g.arena.used;
	pthread_mutex_unlock(&g.arena.lock);
	pthread_mutex_lock(&g.lock);
	st->nslots = g.nslots;
	st->connected = g.connected;
	st->client = g.client_no;
	st->server_pid = g.server_pid;
	pthread_mutex_unlock(&g.lock);
}
