// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * User clients, the worker's side (see lake_uchan.h): one process per user,
 * serving each client it is handed on threads of its own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include "lake_chan.h"
#include "lake_log.h"
#include "lake_uchan.h"
#include "lake_vendor.h"
#include "lake_worker.h"

struct lake_uworker;

struct lake_uclient {
	struct lake_chan chan;		/* served with lake_serve() */
	struct lake_uworker *w;
	struct lake_uclient *next;
	pthread_t thread;
	int sock;
	int memfd;
	void *map;
	size_t map_size;
	struct lake_uhello hello;	/* as the supervisor checked it */
	struct lake_uring_ctrl *uctrl;
	struct lake_uring_done *done;
	__u32 id;
	pid_t pid;
	bool gone;			/* the client hung up */
	unsigned int busy_waits;	/* wait() calls in a row that did not sleep */
	__u32 busy_tail;		/* ...with the queue tail at this value */
	bool mapped;			/* under w->lock: the ring may be woken */
	int finished;			/* the thread is done (atomic) */
	char name[64];
};

/* One user's process. */
struct lake_uworker {
	const struct lake_worker_init *init;
	struct lake_vendor_state vendor;
	int ctl;
	pthread_mutex_t lock;		/* the client list, ctl sends */
	struct lake_uclient *clients;
	unsigned int nclients;
};

#define lake_uclient_of(ch)	((struct lake_uclient *)((char *)(ch) - offsetof(struct lake_uclient, chan)))

static int lake_futex_wait(__u32 *word, __u32 val, unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	if (syscall(SYS_futex, word, FUTEX_WAIT, val, &ts, NULL, 0) == 0)
		return 0;
	return -errno;
}

static void lake_futex_wake(__u32 *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static bool lake_uworker_stopping(struct lake_uworker *w)
{
	(void)w;
	return atomic_load_explicit(lake_worker_stop_flag(), memory_order_relaxed) != 0;
}

/* ------------------------------------------------------------------------ */
/* The channel                                                              */

static int lake_uchan_complete(struct lake_chan *ch, struct lake_completion *done, unsigned int n)
{
	struct lake_uclient *c = lake_uclient_of(ch);
	const __u32 nslots = ch->ring.nslots;
	unsigned int i;

	/* The replies are in their slots: release-store each sequence number. */
	for (i = 0; i < n; i++)
		if (done[i].slot < nslots)
			__atomic_store_n(&c->done[done[i].slot].seq, done[i].seq, __ATOMIC_RELEASE);
	/* Either the caller sees its number before it sleeps, or we see it
	 * waiting (it sets the flag, fences, then looks at the number). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (i = 0; i < n; i++)
		if (done[i].slot < nslots &&
		    __atomic_load_n(&c->done[done[i].slot].waiting, __ATOMIC_RELAXED))
			lake_futex_wake(&c->done[done[i].slot].seq);
	/* Callers waiting for a free slot: async slots free up now. */
	__atomic_fetch_add(&c->uctrl->cq_count, n, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);	/* against the waiter's flag, fence, load */
	if (__atomic_load_n(&c->uctrl->slot_waiters, __ATOMIC_RELAXED))
		lake_futex_wake(&c->uctrl->cq_count);
	return 0;
}

/* Has the client hung up? */
static bool lake_uclient_hung_up(struct lake_uclient *c)
{
	struct pollfd p = { .fd = c->sock, .events = POLLRDHUP };

	return poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL));
}

static int lake_uchan_wait(struct lake_chan *ch)
{
	struct lake_uclient *c = lake_uclient_of(ch);
	struct lake_ring_ctrl *ctrl = ch->ring.ctrl;
	/* lake_serve() just published its head here (the client could have
	 * overwritten it since: then we merely sleep too little or too long). */
	__u32 head = __atomic_load_n(&ctrl->sq_head, __ATOMIC_RELAXED);
	__u32 tail;
	int rc = -EAGAIN;

	if (lake_uworker_stopping(c->w))
		return LAKE_CHAN_STOP;
	__atomic_store_n(&c->uctrl->daemon_sleeping, 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	tail = __atomic_load_n(&ctrl->sq_tail, __ATOMIC_ACQUIRE);
	if (tail == head)
		rc = lake_futex_wait(&ctrl->sq_tail, head, LAKE_UCHAN_WAIT_MS);
	__atomic_store_n(&c->uctrl->daemon_sleeping, 0, __ATOMIC_RELAXED);
	/*
	 * Returning at once, again and again, with nothing new on the queue
	 * means the client scribbled on sq_head: don't let it make this thread
	 * spin at full speed (a real command moves the tail and resets this).
	 */
	if (rc == -EAGAIN && tail == c->busy_tail) {
		if (++c->busy_waits > 1000)
			usleep(1000);
	} else {
		c->busy_waits = 0;
		c->busy_tail = tail;
	}
	if (lake_uworker_stopping(c->w))
		return LAKE_CHAN_STOP;
	/* Nothing came for a while (or the queue is scribbled on): still there? */
	if ((rc == -ETIMEDOUT || c->busy_waits > 1000) && lake_uclient_hung_up(c)) {
		c->gone = true;
		return LAKE_CHAN_STOP;	/* a normal end, not an error */
	}
	return LAKE_CHAN_AGAIN;
}

static const struct lake_chan_ops lake_uchan_ops = {
	.complete = lake_uchan_complete,
	.wait = lake_uchan_wait,
};

/* ------------------------------------------------------------------------ */
/* A client                                                                 */

/* Maps the memfd as the hello laid it out.  0, or a negative errno (why said). */
static int lake_uclient_map(struct lake_uclient *c, char *why, size_t whylen)
{
	const struct lake_uhello *h = &c->hello;
	struct lake_attach a;
	int err;

	/* The supervisor checked both; checking again costs nothing. */
	err = lake_uchan_check_hello(h, why, whylen);
	if (!err)
		err = lake_uchan_check_fd(c->memfd, h, why, whylen);
	if (err)
		return err;
	c->map_size = (size_t)h->map_size;
	c->map = mmap(NULL, c->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->memfd, 0);
	if (c->map == MAP_FAILED) {
		err = -errno;
		c->map = NULL;
		snprintf(why, whylen, "lakeD cannot map the %zu-byte memfd: %s", c->map_size,
			 strerror(-err));
		return err;
	}
	memset(&a, 0, sizeof(a));
	a.version = h->version;
	a.spec_hash = h->spec_hash;
	a.nslots = h->nslots;
	a.slot_size = h->slot_size;
	a.map_size = h->map_size;
	a.sq_offset = h->sq_offset;
	a.slots_offset = h->slots_offset;
	a.arena_offset = h->arena_offset;
	a.arena_size = h->arena_size;
	if (lake_ring_init(&c->chan.ring, c->map, c->map_size, &a, why, whylen))
		return -EINVAL;
	c->uctrl = (struct lake_uring_ctrl *)((__u8 *)c->map + h->uctrl_offset);
	c->done = (struct lake_uring_done *)((__u8 *)c->map + h->done_offset);
	c->chan.name = c->name;
	c->chan.ops = &lake_uchan_ops;
	if (c->chan.ring.arena)	/* bigger pages register and copy faster; best effort */
		madvise(c->chan.ring.arena, c->chan.ring.arena_size, MADV_HUGEPAGE);
	pthread_mutex_lock(&c->w->lock);
	c->mapped = true;
	pthread_mutex_unlock(&c->w->lock);
	return 0;
}

static void lake_uclient_unmap(struct lake_uclient *c)
{
	pthread_mutex_lock(&c->w->lock);
	c->mapped = false;
	pthread_mutex_unlock(&c->w->lock);
	if (c->map)
		munmap(c->map, c->map_size);
	c->map = NULL;
	if (c->memfd >= 0)
		close(c->memfd);
	c->memfd = -1;
}

/* Tells the supervisor (its quotas count what is served). */
static void lake_uworker_report(struct lake_uworker *w, __u32 type, __u32 id, __u64 arena)
{
	struct lake_worker_report r;

	memset(&r, 0, sizeof(r));
	r.magic = LAKE_WORKER_MAGIC;
	r.type = type;
	r.id = id;
	r.arena_size = arena;
	pthread_mutex_lock(&w->lock);
	r.clients = w->nclients;
	r.gpu_bytes = lake_srv_total_gpu_bytes();
	if (lake_msg_send(w->ctl, &r, sizeof(r), NULL, 0))
		lake_debug("cannot report to the supervisor (it is stopping?)");
	pthread_mutex_unlock(&w->lock);
}

static void *lake_uclient_thread(void *arg)
{
	struct lake_uclient *c = arg;
	struct lake_uworker *w = c->w;
	const struct lake_config *cfg = &w->init->cfg;
	/* lake_serve() looks at this flag between commands; wait() at it too. */
	struct lake_serve_opts opts = {
		.spin_us = cfg->spin_us,
		.stop = lake_worker_stop_flag(),
		.threads = cfg->client_threads,
	};
	struct lake_serve_stats stats = { 0 };
	struct lake_srv_conn_stats cs;
	struct lake_srv_conn *conn = NULL;
	char what[96], why[LAKE_UREPLY_REASON];
	unsigned int nres = 0;
	bool pinned = false;
	int rc;

	rc = lake_uclient_map(c, why, sizeof(why));
	if (rc) {
		lake_warn("%s: refused: %s", c->name, why);
		lake_uchan_reply(c->sock, c->id, getpid(), rc, why);
		goto unmap;
	}
	conn = lake_srv_conn_new(&w->vendor.vendors, c->chan.ring.arena, c->chan.ring.arena_size);
	if (!conn) {
		lake_err("%s: no memory for its connection", c->name);
		lake_uchan_reply(c->sock, c->id, getpid(), -ENOMEM, "lakeD is out of memory");
		goto unmap;
	}
	if (!lake_uchan_reply(c->sock, c->id, getpid(), 0, NULL)) {
		lake_info("%s: gone before it was served", c->name);
		goto unmap;
	}
	/* Registering takes time (tens of ms for 64 MiB, seconds for GiBs):
	 * after the answer, so the client's first calls wait, not its hello.
	 * A failure only costs bandwidth. */
	lake_vendor_bind_thread(&w->vendor);	/* the primary context, current here */
	snprintf(what, sizeof(what), "%s's arena", c->name);
	pinned = lake_vendor_pin(&w->vendor, c->chan.ring.arena, c->chan.ring.arena_size, what);
	lake_info("%s: connected: %u slots, arena %llu MiB", c->name, c->chan.ring.nslots,
		  (unsigned long long)(c->chan.ring.arena_size >> 20));
	rc = lake_serve(&c->chan, conn, &opts, &stats);
	lake_srv_conn_stats(conn, &cs);
	nres = cs.owned;
	lake_srv_conn_free(conn);	/* destroys what the client left, drops its references */
	conn = NULL;
	if (rc)
		lake_warn("%s: disconnected: its ring is unusable (%s)", c->name, strerror(-rc));
	lake_info("%s %s: served %llu commands (%llu sleeps), freed %u resource%s, released %u "
		  "primary context reference%s, %u threads with state (%llu evicted, %llu deferred "
		  "errors lost)%s", c->name,
		  c->gone ? "gone" : rc ? "dropped" : "stopped (lakeD is stopping)",
		  (unsigned long long)stats.commands, (unsigned long long)stats.waits, nres,
		  nres == 1 ? "" : "s", cs.refs, cs.refs == 1 ? "" : "s", cs.threads,
		  (unsigned long long)cs.threads_evicted, (unsigned long long)cs.deferred_dropped,
		  cs.quota_refusals ? ", allocations over quota refused" : "");
unmap:
	lake_srv_conn_free(conn);
	if (pinned)
		lake_vendor_unpin(&w->vendor, c->chan.ring.arena);
	lake_uclient_unmap(c);
	/* Last: the client learns we are done only once nothing touches its memory. */
	close(c->sock);
	c->sock = -1;
	pthread_mutex_lock(&w->lock);
	w->nclients--;
	pthread_mutex_unlock(&w->lock);
	lake_uworker_report(w, LAKE_REPORT_GONE, c->id, c->hello.arena_size);
	__atomic_store_n(&c->finished, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Joins the clients whose threads are done (all: wait for each). */
static void lake_uworker_reap(struct lake_uworker *w, bool all)
{
	struct lake_uclient **pp, *c, *dead = NULL;

	pthread_mutex_lock(&w->lock);
	for (pp = &w->clients; (c = *pp);) {
		if (all || __atomic_load_n(&c->finished, __ATOMIC_ACQUIRE)) {
			*pp = c->next;
			c->next = dead;
			dead = c;
		} else {
			pp = &c->next;
		}
	}
	pthread_mutex_unlock(&w->lock);
	while (dead) {
		c = dead->next;
		pthread_join(dead->thread, NULL);
		free(dead);
		dead = c;
	}
}

/* A client handed over by the supervisor. */
static void lake_uworker_take(struct lake_uworker *w, const struct lake_worker_client *m,
			      int sock, int memfd)
{
	struct lake_uclient *c = calloc(1, sizeof(*c));
	sigset_t all, old;
	int err;

	if (!c) {
		lake_uchan_reply(sock, m->id, getpid(), -ENOMEM, "lakeD is out of memory");
		close(sock);
		close(memfd);
		lake_uworker_report(w, LAKE_REPORT_GONE, m->id, m->hello.arena_size);
		return;
	}
	c->w = w;
	c->sock = sock;
	c->memfd = memfd;
	c->hello = m->hello;
	c->id = m->id;
	c->pid = m->pid;
	snprintf(c->name, sizeof(c->name), "client %u (pid %d)", c->id, (int)c->pid);
	pthread_mutex_lock(&w->lock);
	sigfillset(&all);	/* signals are the main thread's */
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = pthread_create(&c->thread, NULL, lake_uclient_thread, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!err) {
		c->next = w->clients;
		w->clients = c;
		w->nclients++;
	}
	pthread_mutex_unlock(&w->lock);
	if (err) {
		lake_warn("%s: cannot start its thread: %s", c->name, strerror(err));
		lake_uchan_reply(sock, c->id, getpid(), -err, "lakeD cannot start a thread for this client");
		close(sock);
		close(memfd);
		lake_uworker_report(w, LAKE_REPORT_GONE, c->id, c->hello.arena_size);
		free(c);
	}
}

int lake_uworker_run(const struct lake_worker_init *init, int ctl)
{
	struct lake_srv_limits limits = {
		.conn_gpu_bytes = (__u64)init->cfg.max_gpu_mb_per_client << 20,
		.total_gpu_bytes = (__u64)init->cfg.max_gpu_mb_per_uid << 20,
		.max_threads = init->cfg.max_threads_per_client,
	};
	struct lake_uworker w;
	struct lake_uclient *c;
	__u64 last_gpu = 0;
	unsigned int n;

	memset(&w, 0, sizeof(w));
	w.init = init;
	w.ctl = ctl;
	pthread_mutex_init(&w.lock, NULL);
	lake_vendor_load(&w.vendor);
	lake_vendor_gpu_init(&w.vendor, false);
	lake_srv_set_limits(&limits);
	lake_info("serving the clients of uid %u (process %d)", init->uid, (int)getpid());
	while (!lake_uworker_stopping(&w)) {
		struct pollfd p[2] = {
			{ .fd = ctl, .events = POLLIN },
			{ .fd = lake_worker_stop_eventfd(), .events = POLLIN },
		};
		struct lake_worker_client m;
		int fds[2], nfd = 0, rc;

		rc = poll(p, 2, 1000);
		lake_uworker_reap(&w, false);
		if (lake_srv_total_gpu_bytes() != last_gpu) {	/* for the supervisor's status */
			last_gpu = lake_srv_total_gpu_bytes();
			lake_uworker_report(&w, LAKE_REPORT_USAGE, 0, 0);
		}
		if (rc <= 0 || !(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		rc = lake_msg_recv(ctl, &m, sizeof(m), fds, 2, &nfd);
		if (rc == -EAGAIN)
			continue;
		if (rc == -ENOTCONN || (rc && rc != -EPROTO))
			break;	/* the supervisor is gone or stops us */
		if (rc || m.magic != LAKE_WORKER_MAGIC || nfd != 2) {
			lake_err("a malformed message from the supervisor: ignored");
			while (nfd)
				close(fds[--nfd]);
			continue;
		}
		lake_uworker_take(&w, &m, fds[0], fds[1]);
	}
	/* Stop every client (each frees its CUDA resources). */
	lake_worker_request_stop();
	pthread_mutex_lock(&w.lock);
	for (c = w.clients, n = 0; c; c = c->next, n++)
		if (c->mapped)
			lake_futex_wake(&c->chan.ring.ctrl->sq_tail);
	pthread_mutex_unlock(&w.lock);
	if (n)
		lake_info("stopping %u client%s", n, n == 1 ? "" : "s");
	lake_uworker_reap(&w, true);
	lake_vendor_unload(&w.vendor);
	pthread_mutex_destroy(&w.lock);
	return 0;
}
