// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * User-space clients' channels (see lake_uchan.h and include/lake/lake_uring.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/futex.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include "lake_chan.h"
#include "lake_log.h"
#include "lake_uchan.h"
#include "lake_vendor.h"

#define LAKE_UCHAN_MAX_FDS	8	/* fds accepted in one hello; all but the first closed */

struct lake_uclient {
	struct lake_chan chan;		/* served with lake_serve() */
	struct lake_uchan_server *srv;
	struct lake_uclient *next;
	pthread_t thread;
	int sock;
	int memfd;
	void *map;
	size_t map_size;
	struct lake_uring_ctrl *uctrl;
	struct lake_uring_done *done;
	__u32 id;
	pid_t pid;
	uid_t uid;
	bool gone;			/* the client hung up */
	unsigned int busy_waits;	/* wait() calls in a row that did not sleep */
	__u32 busy_tail;		/* ...with the queue tail at this value */
	bool mapped;			/* under srv->lock: the ring may be woken */
	int finished;			/* the thread is done (atomic) */
	char name[64];
};

struct lake_uchan_server {
	struct lake_uchan_opts o;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int lfd;
	dev_t dev;
	ino_t ino;
	pthread_t listener;
	pthread_mutex_t lock;
	struct lake_uclient *clients;
	unsigned int nclients;
	__u32 next_id;
	atomic_int stopping;		/* lake_uchan_stop(): the serve loops' stop flag */
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

static bool lake_uchan_stop_asked(struct lake_uchan_server *s)
{
	return atomic_load_explicit(&s->stopping, memory_order_relaxed) ||
	       (s->o.stop && atomic_load_explicit(s->o.stop, memory_order_relaxed));
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

	if (lake_uchan_stop_asked(c->srv))
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
	if (lake_uchan_stop_asked(c->srv))
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
/* The hello                                                                */

#define LAKE_WHY(err, ...)	do { snprintf(why, whylen, __VA_ARGS__); return (err); } while (0)

int lake_uchan_check_hello(const struct lake_uhello *h, char *why, size_t whylen)
{
	struct lake_uhello std;
	__u64 sq_len, done_len;

	if (h->magic != LAKE_UHELLO_MAGIC)
		LAKE_WHY(-EPROTO, "not a liblake hello (magic 0x%08x)", h->magic);
	if (h->version != LAKE_PROTO_VERSION)
		LAKE_WHY(-EPROTONOSUPPORT, "protocol version mismatch: the client speaks LAKE "
			 "protocol version %u, lakeD version %u -- use liblake and lakeD of "
			 "the same build", h->version, LAKE_PROTO_VERSION);
	if (h->spec_hash != LAKE_SPEC_HASH)
		LAKE_WHY(-EPROTO, "spec hash mismatch: the client was generated from api-spec/ "
			 "0x%016llx, lakeD from 0x%016llx -- rebuild both from the same api-spec/",
			 (unsigned long long)h->spec_hash, (unsigned long long)LAKE_SPEC_HASH);
	if (h->uring_version != LAKE_URING_VERSION)
		LAKE_WHY(-EPROTONOSUPPORT, "user ring version mismatch: the client's is %u, "
			 "lakeD's %u -- use liblake and lakeD of the same build",
			 h->uring_version, LAKE_URING_VERSION);
	if (h->flags || h->reserved[0] || h->reserved[1] || h->reserved[2] || h->reserved[3])
		LAKE_WHY(-EINVAL, "flags and reserved fields of the hello must be zero");
	if (h->slot_size != LAKE_SLOT_SIZE)
		LAKE_WHY(-EINVAL, "slot size %u, lakeD's is %u", h->slot_size, LAKE_SLOT_SIZE);
	if (!h->nslots || h->nslots > LAKE_URING_MAX_SLOTS || (h->nslots & (h->nslots - 1)))
		LAKE_WHY(-EINVAL, "%u slots: not a power of two in 1..%u", h->nslots,
			 LAKE_URING_MAX_SLOTS);
	if (h->arena_size > LAKE_URING_MAX_ARENA || h->arena_size % LAKE_URING_PAGE)
		LAKE_WHY(-EINVAL, "arena of %llu bytes: not a multiple of %llu up to %llu MiB",
			 (unsigned long long)h->arena_size, LAKE_URING_PAGE,
			 LAKE_URING_MAX_ARENA >> 20);
	/* The ring parts lake_ring_init() does not know. */
	sq_len = (__u64)h->nslots * sizeof(__u32);
	done_len = (__u64)h->nslots * sizeof(struct lake_uring_done);
	if (h->uctrl_offset < sizeof(struct lake_ring_ctrl) || h->uctrl_offset % 64 ||
	    h->uctrl_offset > h->sq_offset ||
	    h->sq_offset - h->uctrl_offset < sizeof(struct lake_uring_ctrl))
		LAKE_WHY(-EINVAL, "user ring control at %llu is misplaced (queue at %llu)",
			 (unsigned long long)h->uctrl_offset, (unsigned long long)h->sq_offset);
	if (h->done_offset % 64 || h->sq_offset > h->done_offset ||
	    h->done_offset - h->sq_offset < sq_len || h->done_offset > h->slots_offset ||
	    h->slots_offset - h->done_offset < done_len)
		LAKE_WHY(-EINVAL, "completion words at %llu (+%llu) are misplaced (queue at %llu, "
			 "slots at %llu)", (unsigned long long)h->done_offset,
			 (unsigned long long)done_len, (unsigned long long)h->sq_offset,
			 (unsigned long long)h->slots_offset);
	/* No more than the standard layout, give or take alignment. */
	lake_uring_layout(&std, h->nslots, h->arena_size);
	if (h->map_size > std.map_size + 16 * LAKE_URING_PAGE)
		LAKE_WHY(-EINVAL, "a region of %llu bytes for %u slots and a %llu MiB arena is "
			 "too big", (unsigned long long)h->map_size, h->nslots,
			 (unsigned long long)(h->arena_size >> 20));
	return 0;
}

/* The memfd: a sealed shmem file big enough for the layout. */
static int lake_uchan_check_fd(int fd, const struct lake_uhello *h, char *why, size_t whylen)
{
	struct statfs sfs;
	struct stat st;
	int seals;

	if (fd < 0)
		LAKE_WHY(-EBADF, "no shared memory file descriptor came with the hello "
			 "(SCM_RIGHTS)");
	if (fstatfs(fd, &sfs) || (unsigned long)sfs.f_type != TMPFS_MAGIC)
		LAKE_WHY(-EINVAL, "the shared memory must be a memfd (a shmem file; hugetlbfs "
			 "and other files are refused)");
	/* Seals only ever get added: once SHRINK is there, the size below stays. */
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK))
		LAKE_WHY(-EINVAL, "the memfd must be sealed against shrinking (F_SEAL_SHRINK)");
	if (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE))
		LAKE_WHY(-EINVAL, "the memfd is sealed against writing: lakeD must write replies");
	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		LAKE_WHY(-EINVAL, "the shared memory is not a regular file");
	if ((__u64)st.st_size < h->map_size)
		LAKE_WHY(-EINVAL, "the memfd has %lld bytes, the layout needs %llu",
			 (long long)st.st_size, (unsigned long long)h->map_size);
	return 0;
}

/* Receives the hello and its fd (the first one; others are closed). */
static int lake_uchan_recv_hello(struct lake_uclient *c, struct lake_uhello *h, int *fd,
				 char *why, size_t whylen)
{
	union {
		char buf[CMSG_SPACE(LAKE_UCHAN_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} u;
	char data[sizeof(*h) + 1];
	struct iovec iov = { .iov_base = data, .iov_len = sizeof(data) };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	struct pollfd p[2] = {
		{ .fd = c->sock, .events = POLLIN },
		{ .fd = c->srv->o.stop_fd, .events = POLLIN },
	};
	struct cmsghdr *cm;
	ssize_t n;
	int rc;

	*fd = -1;
	do
		rc = poll(p, c->srv->o.stop_fd >= 0 ? 2 : 1, LAKE_UCHAN_HELLO_TIMEOUT_MS);
	while (rc < 0 && errno == EINTR && !lake_uchan_stop_asked(c->srv));
	if (rc < 0)
		LAKE_WHY(-errno, "poll: %s", strerror(errno));
	if (rc == 0)
		LAKE_WHY(-ETIMEDOUT, "no hello within %d ms", LAKE_UCHAN_HELLO_TIMEOUT_MS);
	if (lake_uchan_stop_asked(c->srv) || (c->srv->o.stop_fd >= 0 && p[1].revents))
		LAKE_WHY(-ESHUTDOWN, "lakeD is shutting down");
	memset(&u, 0, sizeof(u));
	do
		n = recvmsg(c->sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		LAKE_WHY(-errno, "reading the hello: %s", strerror(errno));
	/* Take the fds first, so that none leaks whatever else is wrong. */
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		size_t nfd, i;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
		    cm->cmsg_len < CMSG_LEN(0))
			continue;
		nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < nfd; i++) {
			int f;

			memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (*fd < 0)
				*fd = f;
			else
				close(f);
		}
	}
	if (n == 0)
		LAKE_WHY(-ECONNRESET, "the client closed the connection before its hello");
	if (msg.msg_flags & MSG_CTRUNC)
		LAKE_WHY(-EINVAL, "too many file descriptors with the hello");
	if (n != (ssize_t)sizeof(*h) || (msg.msg_flags & MSG_TRUNC))
		LAKE_WHY(-EINVAL, "the hello has %zd bytes, lakeD expects %zu (not a liblake of "
			 "this version?)", n, sizeof(*h));
	memcpy(h, data, sizeof(*h));
	return 0;
}

static void lake_uchan_reply(struct lake_uclient *c, int status, const char *reason)
{
	struct lake_uhello_reply r;
	ssize_t n;

	memset(&r, 0, sizeof(r));
	r.magic = LAKE_UREPLY_MAGIC;
	r.status = status;
	r.client = c->id;
	r.version = LAKE_PROTO_VERSION;
	r.spec_hash = LAKE_SPEC_HASH;
	r.uring_version = LAKE_URING_VERSION;
	snprintf(r.reason, sizeof(r.reason), "%s", reason ? reason : "");
	do
		n = send(c->sock, &r, sizeof(r), MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(r))
		c->gone = true;
}

/* Hello, checks, mapping.  Returns 0, or a negative errno (reply sent). */
static int lake_uclient_attach(struct lake_uclient *c)
{
	struct lake_uhello h = { 0 };
	struct lake_attach a;
	char why[LAKE_UREPLY_REASON];
	int fd = -1, err;

	err = lake_uchan_recv_hello(c, &h, &fd, why, sizeof(why));
	if (!err)
		err = lake_uchan_check_hello(&h, why, sizeof(why));
	if (!err)
		err = lake_uchan_check_fd(fd, &h, why, sizeof(why));
	if (err)
		goto refuse;
	c->map_size = (size_t)h.map_size;
	c->map = mmap(NULL, c->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (c->map == MAP_FAILED) {
		err = -errno;
		c->map = NULL;
		snprintf(why, sizeof(why), "lakeD cannot map the %zu-byte memfd: %s", c->map_size,
			 strerror(-err));
		goto refuse;
	}
	memset(&a, 0, sizeof(a));
	a.version = h.version;
	a.spec_hash = h.spec_hash;
	a.nslots = h.nslots;
	a.slot_size = h.slot_size;
	a.map_size = h.map_size;
	a.sq_offset = h.sq_offset;
	a.slots_offset = h.slots_offset;
	a.arena_offset = h.arena_offset;
	a.arena_size = h.arena_size;
	if (lake_ring_init(&c->chan.ring, c->map, c->map_size, &a, why, sizeof(why))) {
		err = -EINVAL;
		goto refuse;
	}
	c->memfd = fd;
	c->uctrl = (struct lake_uring_ctrl *)((__u8 *)c->map + h.uctrl_offset);
	c->done = (struct lake_uring_done *)((__u8 *)c->map + h.done_offset);
	c->chan.name = c->name;
	c->chan.ops = &lake_uchan_ops;
	if (c->chan.ring.arena)	/* bigger pages register and copy faster; best effort */
		madvise(c->chan.ring.arena, c->chan.ring.arena_size, MADV_HUGEPAGE);
	pthread_mutex_lock(&c->srv->lock);
	c->mapped = true;
	pthread_mutex_unlock(&c->srv->lock);
	return 0;
refuse:
	lake_warn("%s (uid %u): refused: %s", c->name, (unsigned int)c->uid, why);
	lake_uchan_reply(c, err, why);
	if (fd >= 0)
		close(fd);
	if (c->map)
		munmap(c->map, c->map_size);
	c->map = NULL;
	return err;
}

static void lake_uclient_unmap(struct lake_uclient *c)
{
	pthread_mutex_lock(&c->srv->lock);
	c->mapped = false;
	pthread_mutex_unlock(&c->srv->lock);
	if (c->map)
		munmap(c->map, c->map_size);
	c->map = NULL;
	if (c->memfd >= 0)
		close(c->memfd);
	c->memfd = -1;
}

static void *lake_uclient_thread(void *arg)
{
	struct lake_uclient *c = arg;
	struct lake_uchan_server *s = c->srv;
	/* lake_serve() looks at this flag between commands; wait() at lakeD's too. */
	struct lake_serve_opts opts = { .spin_us = s->o.spin_us, .stop = &s->stopping };
	struct lake_serve_stats stats = { 0 };
	struct lake_vendor_state *v = s->o.vendor;
	struct lake_srv_conn *conn = NULL;
	char what[96];
	unsigned int nres = 0;
	bool pinned = false;
	int rc;

	if (lake_uclient_attach(c))
		goto out;
	conn = lake_srv_conn_new(&v->vendors, c->chan.ring.arena, c->chan.ring.arena_size);
	if (!conn) {
		lake_err("%s: no memory for its connection", c->name);
		lake_uchan_reply(c, -ENOMEM, "lakeD is out of memory");
		goto unmap;
	}
	lake_uchan_reply(c, 0, NULL);
	if (c->gone) {
		lake_info("%s: gone before it was served", c->name);
		goto unmap;
	}
	/* Registering takes time (tens of ms for 64 MiB, seconds for GiBs):
	 * after the answer, so the client's first calls wait, not its hello.
	 * A failure only costs bandwidth. */
	lake_vendor_bind_thread(v);	/* the primary context, current on this thread */
	snprintf(what, sizeof(what), "%s's arena", c->name);
	pinned = lake_vendor_pin(v, c->chan.ring.arena, c->chan.ring.arena_size, what);
	lake_info("%s (uid %u): connected: %u slots, arena %llu MiB", c->name,
		  (unsigned int)c->uid, c->chan.ring.nslots,
		  (unsigned long long)(c->chan.ring.arena_size >> 20));
	rc = lake_serve(&c->chan, conn, &opts, &stats);
	nres = lake_srv_res_count(conn, LAKE_RT_NONE);
	lake_srv_conn_free(conn);	/* destroys what the client left */
	conn = NULL;
	if (rc)
		lake_warn("%s: disconnected: its ring is unusable (%s)", c->name, strerror(-rc));
	lake_info("%s %s: served %llu commands (%llu sleeps), freed %u resource%s", c->name,
		  c->gone ? "gone" : rc ? "dropped" : "stopped (lakeD is stopping)",
		  (unsigned long long)stats.commands, (unsigned long long)stats.waits, nres,
		  nres == 1 ? "" : "s");
unmap:
	lake_srv_conn_free(conn);
	if (pinned)
		lake_vendor_unpin(v, c->chan.ring.arena);
	lake_uclient_unmap(c);
out:
	/* Last: the client learns we are done only once nothing touches its memory. */
	close(c->sock);
	c->sock = -1;
	__atomic_store_n(&c->finished, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* The listener                                                             */

/* Joins the clients whose threads are done.  Returns how many are left. */
static unsigned int lake_uchan_reap(struct lake_uchan_server *s, bool all)
{
	struct lake_uclient **pp, *c, *dead = NULL;
	unsigned int left;

	pthread_mutex_lock(&s->lock);
	for (pp = &s->clients; (c = *pp);) {
		if (all || __atomic_load_n(&c->finished, __ATOMIC_ACQUIRE)) {
			*pp = c->next;
			c->next = dead;
			dead = c;
			s->nclients--;
		} else {
			pp = &c->next;
		}
	}
	left = s->nclients;
	pthread_mutex_unlock(&s->lock);
	while (dead) {
		c = dead->next;
		pthread_join(dead->thread, NULL);
		free(dead);
		dead = c;
	}
	return left;
}

static void lake_uchan_accept(struct lake_uchan_server *s)
{
	const unsigned int max = s->o.max_clients ? s->o.max_clients : LAKE_UCHAN_MAX_CLIENTS;
	struct lake_uclient *c;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd, err;

	fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			lake_warn("%s: cannot accept a client: %s", s->path, strerror(errno));
			usleep(100 * 1000);	/* don't spin on a full fd table */
		}
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->srv = s;
	c->sock = fd;
	c->memfd = -1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
		c->pid = cred.pid;
		c->uid = cred.uid;
	}
	pthread_mutex_lock(&s->lock);
	c->id = ++s->next_id;
	snprintf(c->name, sizeof(c->name), "client %u (pid %d)", c->id, (int)c->pid);
	if (s->nclients >= max) {
		pthread_mutex_unlock(&s->lock);
		lake_warn("%s: refused: lakeD serves %u clients already (the most it will)",
			  c->name, max);
		lake_uchan_reply(c, -EUSERS, "lakeD serves too many clients");
		close(fd);
		free(c);
		return;
	}
	err = pthread_create(&c->thread, NULL, lake_uclient_thread, c);
	if (err) {
		pthread_mutex_unlock(&s->lock);
		lake_warn("%s: cannot start its thread: %s", c->name, strerror(err));
		lake_uchan_reply(c, -err, "lakeD cannot start a thread for this client");
		close(fd);
		free(c);
		return;
	}
	c->next = s->clients;
	s->clients = c;
	s->nclients++;
	pthread_mutex_unlock(&s->lock);
}

static void *lake_uchan_listener(void *arg)
{
	struct lake_uchan_server *s = arg;

	while (!lake_uchan_stop_asked(s)) {
		struct pollfd p[2] = {
			{ .fd = s->lfd, .events = POLLIN },
			{ .fd = s->o.stop_fd, .events = POLLIN },
		};
		int rc = poll(p, s->o.stop_fd >= 0 ? 2 : 1, 1000);

		lake_uchan_reap(s, false);
		if (rc < 0 && errno != EINTR) {
			lake_err("%s: poll: %s", s->path, strerror(errno));
			break;
		}
		if (rc <= 0)
			continue;
		if (s->o.stop_fd >= 0 && p[1].revents)
			break;
		if (p[0].revents & POLLIN)
			lake_uchan_accept(s);
	}
	return NULL;
}

/* mkdir -p of @path's directory (0755). */
static int lake_mkdir_parent(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *p;

	snprintf(dir, sizeof(dir), "%s", path);
	p = strrchr(dir, '/');
	if (!p || p == dir)
		return 0;
	*p = 0;
	for (p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(dir, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

/* A socket file at @path: stale (remove it), live (refuse) or not a socket. */
static int lake_uchan_take_path(const char *path, struct sockaddr_un *addr)
{
	struct stat st;
	int fd, err;

	if (lstat(path, &st)) {
		if (errno == ENOENT)
			return 0;
		err = errno;
		lake_err("%s: %s", path, strerror(err));
		return -err;
	}
	if (!S_ISSOCK(st.st_mode)) {
		lake_err("%s exists and is not a socket: not touching it (set socket = another "
			 "path, or remove it)", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)addr, sizeof(*addr)) == 0) {
		close(fd);
		lake_err("%s: another lakeD is serving there", path);
		return -EADDRINUSE;
	}
	err = errno;
	close(fd);
	if (err != ECONNREFUSED && err != ENOENT) {
		lake_err("%s: cannot tell whether another lakeD serves there: %s", path,
			 strerror(err));
		return -err;
	}
	if (unlink(path) && errno != ENOENT) {
		err = errno;
		lake_err("%s: cannot remove the stale socket: %s", path, strerror(err));
		return -err;
	}
	lake_info("%s: removed a stale socket (no lakeD behind it)", path);
	return 0;
}

/* "DIR/.lakeD-PID.sock" next to @path, or @path itself when that is too long. */
static void lake_uchan_tmp_name(const char *path, struct sockaddr_un *tmp)
{
	const char *slash = strrchr(path, '/');
	int dirlen = slash ? (int)(slash - path) : 0, n;

	memset(tmp, 0, sizeof(*tmp));
	tmp->sun_family = AF_UNIX;
	n = snprintf(tmp->sun_path, sizeof(tmp->sun_path), "%.*s%s.lakeD-%d.sock", dirlen, path,
		     slash ? "/" : "", (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp->sun_path))
		snprintf(tmp->sun_path, sizeof(tmp->sun_path), "%s", path);
}

int lake_uchan_start(struct lake_uchan_server **out, const struct lake_uchan_opts *o)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX }, tmp;
	struct lake_uchan_server *s;
	sigset_t all, old;
	struct group *gr = NULL;
	struct stat st;
	int err;

	*out = NULL;
	if (!o->path || !o->path[0] || strlen(o->path) >= sizeof(addr.sun_path)) {
		lake_err("socket path '%s' is empty or longer than %zu bytes", o->path ? o->path : "",
			 sizeof(addr.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->o = *o;
	s->lfd = -1;
	pthread_mutex_init(&s->lock, NULL);
	snprintf(s->path, sizeof(s->path), "%s", o->path);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", o->path);
	err = lake_mkdir_parent(s->path);
	if (err) {
		lake_err("%s: cannot create its directory: %s", s->path, strerror(-err));
		goto fail;
	}
	err = lake_uchan_take_path(s->path, &addr);
	if (err)
		goto fail;
	s->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->lfd < 0) {
		err = -errno;
		lake_err("socket: %s", strerror(errno));
		goto fail;
	}
	/* The file is created with the socket inode's mode less the umask: never
	 * wider than asked, even before the chmod below. */
	if (fchmod(s->lfd, o->mode & 0777)) {
		/* not fatal: chmod below */
	}
	/* Bound under a temporary name and renamed into place once listening,
	 * so whoever sees the socket file can connect (no ECONNREFUSED window
	 * for scripts that wait for the file). */
	lake_uchan_tmp_name(s->path, &tmp);
	unlink(tmp.sun_path);
	if (bind(s->lfd, (struct sockaddr *)&tmp, sizeof(tmp))) {
		err = -errno;
		lake_err("%s: cannot bind: %s", tmp.sun_path, strerror(errno));
		goto fail;
	}
	if (o->group && o->group[0])
		gr = getgrnam(o->group);
	if (gr && chown(tmp.sun_path, (uid_t)-1, gr->gr_gid))
		lake_warn("%s: cannot give it to group %s: %s", s->path, o->group, strerror(errno));
	if (chmod(tmp.sun_path, o->mode & 0777)) {
		err = -errno;
		lake_err("%s: chmod %04o: %s", tmp.sun_path, o->mode & 0777, strerror(errno));
		goto fail_unlink;
	}
	if (listen(s->lfd, 128)) {
		err = -errno;
		lake_err("%s: listen: %s", s->path, strerror(errno));
		goto fail_unlink;
	}
	/* NOREPLACE: a socket that appeared meanwhile (another lakeD starting)
	 * is not taken over. */
	if (strcmp(tmp.sun_path, s->path) &&
	    renameat2(AT_FDCWD, tmp.sun_path, AT_FDCWD, s->path, RENAME_NOREPLACE) &&
	    (errno != EINVAL || rename(tmp.sun_path, s->path))) {
		err = -errno;
		lake_err("%s: cannot move the socket into place: %s%s", s->path, strerror(errno),
			 errno == EEXIST ? " (another lakeD started there?)" : "");
		goto fail_unlink;
	}
	if (stat(s->path, &st) == 0) {
		s->dev = st.st_dev;
		s->ino = st.st_ino;
	}
	/* Signals go to the main thread; these threads only serve. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = -pthread_create(&s->listener, NULL, lake_uchan_listener, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		lake_err("%s: cannot start the listener thread: %s", s->path, strerror(-err));
		goto fail_unlink;
	}
	lake_info("serving user-space clients (liblake) on %s (mode %04o%s%s)", s->path,
		  o->mode & 0777, gr ? ", group " : "", gr ? o->group : "");
	*out = s;
	return 0;
fail_unlink:
	unlink(tmp.sun_path);
fail:
	if (s->lfd >= 0)
		close(s->lfd);
	pthread_mutex_destroy(&s->lock);
	free(s);
	return err;
}

unsigned int lake_uchan_nclients(struct lake_uchan_server *s)
{
	unsigned int n;

	pthread_mutex_lock(&s->lock);
	n = s->nclients;
	pthread_mutex_unlock(&s->lock);
	return n;
}

void lake_uchan_stop(struct lake_uchan_server *s)
{
	struct lake_uclient *c;
	struct stat st;
	unsigned int n;

	if (!s)
		return;
	atomic_store(&s->stopping, 1);
	pthread_join(s->listener, NULL);
	close(s->lfd);
	/* Remove the file only if it is still ours. */
	if (stat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
	/* Wake the serving threads now rather than at their next look. */
	pthread_mutex_lock(&s->lock);
	for (c = s->clients; c; c = c->next)
		if (c->mapped)
			lake_futex_wake(&c->chan.ring.ctrl->sq_tail);
	n = s->nclients;
	pthread_mutex_unlock(&s->lock);
	if (n)
		lake_info("stopping %u user-space client%s", n, n == 1 ? "" : "s");
	lake_uchan_reap(s, true);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
