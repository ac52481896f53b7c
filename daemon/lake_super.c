// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * lakeD's supervisor (see lake_super.h, lake_worker.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include "lake_chan.h"
#include "lake_log.h"
#include "lake_priv.h"
#include "lake_super.h"
#include "lake_uchan.h"
#include "lake_worker.h"

#define LAKE_SUPER_MAX_POLL	4096

/* A worker, as the supervisor sees it. */
struct lake_wk {
	struct lake_wk *next;
	pid_t pid;
	int ctl;		/* -1 once closed (the worker is stopping) */
	int kind;
	uid_t uid;
	unsigned int nclients;
	__u64 pinned;		/* its clients' arenas */
	__u64 gpu_bytes;	/* as it last reported */
	__u64 idle_since;	/* ns; 0 while it has clients */
};

/* A connection that has not said hello yet. */
struct lake_pend {
	struct lake_pend *next;
	int fd;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	__u32 id;
	__u64 since, deadline;
};

struct lake_sup {
	const struct lake_super_opts *o;
	const struct lake_config *cfg;
	struct lake_ulisten l;
	bool socket;
	struct lake_wk *kernel, *users;
	struct lake_pend *pend;		/* oldest first */
	unsigned int npend, nclients;
	__u32 next_id;
	bool can_switch;		/* CAP_SETUID and CAP_SETGID: serves any user */
	__u64 started;
	__u64 refused, dropped, last_drop_log;
	int status;			/* lakeD's exit status */
};

static __u64 lake_ns(void)
{
	return lake_now_ns();
}

/* ------------------------------------------------------------------------ */
/* Workers                                                                  */

static void lake_wk_close(struct lake_wk *w)
{
	if (w->ctl >= 0)
		close(w->ctl);
	w->ctl = -1;
}

static struct lake_wk *lake_wk_spawn(struct lake_sup *s, int kind, uid_t uid,
				     const struct lake_creds *creds, int dev_fd)
{
	struct lake_worker_init *init = calloc(1, sizeof(*init));
	struct lake_wk *w = calloc(1, sizeof(*w));
	pid_t pid;

	if (!init || !w) {
		free(init);
		free(w);
		return NULL;
	}
	init->magic = LAKE_WORKER_MAGIC;
	init->kind = (__u32)kind;
	init->uid = (__u32)uid;
	init->syslog = (__u32)s->o->syslog;
	init->supervisor = getpid();
	init->attach = s->o->attach;
	init->cfg = *s->cfg;
	pid = lake_worker_spawn(s->o->exe_fd, s->o->prog, init, creds, dev_fd,
				kind == LAKE_WORKER_USER, &w->ctl);
	free(init);
	if (pid < 0) {
		lake_err("cannot start a process for %s: %s",
			 kind == LAKE_WORKER_KERNEL ? "the kernel channel" : "a user", strerror(-pid));
		free(w);
		return NULL;
	}
	w->pid = pid;
	w->kind = kind;
	w->uid = creds ? creds->uid : geteuid();
	if (kind == LAKE_WORKER_USER)
		w->uid = uid;
	return w;
}

static struct lake_wk *lake_wk_of_uid(struct lake_sup *s, uid_t uid)
{
	struct lake_wk *w;

	for (w = s->users; w; w = w->next)
		if (w->uid == uid && w->ctl >= 0)
			return w;
	return NULL;
}

/* A worker's control socket closed: it exited.  Collects its status. */
static void lake_wk_ended(struct lake_sup *s, struct lake_wk *w)
{
	int st = 0;

	lake_wk_close(w);
	if (waitpid(w->pid, &st, 0) != w->pid)
		st = 0;
	w->pid = 0;
	if (w->kind == LAKE_WORKER_KERNEL) {
		/* The daemon lake.ko knew is gone: lakeD ends (and is restarted). */
		if (!atomic_load(s->o->stop)) {
			lake_err("the kernel channel's process %s %d: stopping",
				 WIFSIGNALED(st) ? "was killed by signal" : "exited with status",
				 WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
			s->status = 1;
		}
		return;
	}
	if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
		lake_warn("the process of uid %u (%d) %s %d; its %u client%s lost their lakeD",
			  (unsigned int)w->uid, (int)w->pid,
			  WIFSIGNALED(st) ? "was killed by signal" : "exited with status",
			  WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), w->nclients,
			  w->nclients == 1 ? "" : "s");
	s->nclients -= w->nclients;
	w->nclients = 0;
}

static void lake_wk_unlink(struct lake_sup *s, struct lake_wk *w)
{
	struct lake_wk **pp;

	for (pp = &s->users; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	free(w);
}

/* Reads one report of @w; false when its socket closed. */
static bool lake_wk_read(struct lake_sup *s, struct lake_wk *w)
{
	struct lake_worker_report r;
	int rc = lake_msg_recv(w->ctl, &r, sizeof(r), NULL, 0, NULL);

	if (rc == -EAGAIN)
		return true;
	if (rc || r.magic != LAKE_WORKER_MAGIC)
		return rc == -EPROTO;	/* garbage is ignored; a close ends it */
	w->gpu_bytes = r.gpu_bytes;
	if (r.type == LAKE_REPORT_GONE && w->nclients) {
		w->nclients--;
		s->nclients--;
		w->pinned -= r.arena_size <= w->pinned ? r.arena_size : w->pinned;
		if (!w->nclients)
			w->idle_since = lake_ns();
	}
	return true;
}

/* ------------------------------------------------------------------------ */
/* Connections before their hello                                           */

static void lake_refuse(struct lake_sup *s, int fd, __u32 id, int status, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Answers with why, then closes (having read the hello, if any: the client
 * gets the answer, not a reset). */
static void lake_refuse(struct lake_sup *s, int fd, __u32 id, int status, const char *fmt, ...)
{
	char why[LAKE_UREPLY_REASON];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	lake_uchan_reply(fd, id, 0, status, why);
	close(fd);
	s->refused++;
}

static void lake_pend_unlink(struct lake_sup *s, struct lake_pend *p)
{
	struct lake_pend **pp;

	for (pp = &s->pend; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	s->npend--;
	free(p);
}

static void lake_pend_drop(struct lake_sup *s, struct lake_pend *p, const char *why)
{
	__u64 now = lake_ns();

	s->dropped++;
	if (now - s->last_drop_log > 1000000000ull) {	/* at most one line a second */
		lake_warn("client %u (pid %d) (uid %u): dropped: %s (%llu dropped so far)", p->id,
			  (int)p->pid, (unsigned int)p->uid, why, (unsigned long long)s->dropped);
		s->last_drop_log = now;
	}
	lake_refuse(s, p->fd, p->id, -ETIMEDOUT, "%s", why);
	p->fd = -1;
	lake_pend_unlink(s, p);
}

static void lake_accept(struct lake_sup *s)
{
	const struct lake_config *cfg = s->cfg;
	unsigned int n;

	for (n = 0; n < 64; n++) {
		struct ucred cred = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
		socklen_t len = sizeof(cred);
		struct lake_pend *p, *q, *oldest = NULL, **tail;
		unsigned int mine = 0;
		__u64 now = lake_ns();
		int fd;

		fd = accept4(s->l.fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				lake_warn("%s: cannot accept a client: %s", s->l.path, strerror(errno));
			return;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)) {
			close(fd);
			continue;
		}
		/* Connections that never say hello are bounded per user (a user's
		 * own oldest make room) and in all (the oldest anyone's). */
		for (q = s->pend; q; q = q->next)
			if (q->uid == cred.uid && !mine++)
				oldest = q;
		if (mine >= cfg->max_pending_per_uid)
			lake_pend_drop(s, oldest, "too many of this user's connections waiting for "
				       "their hello (max_pending_per_uid): the oldest is dropped");
		else if (s->npend >= cfg->max_pending)
			lake_pend_drop(s, s->pend, "too many connections waiting for their hello "
				       "(max_pending): the oldest is dropped");
		p = calloc(1, sizeof(*p));
		if (!p) {
			close(fd);
			continue;
		}
		p->fd = fd;
		p->uid = cred.uid;
		p->gid = cred.gid;
		p->pid = cred.pid;
		p->id = ++s->next_id;
		p->since = now;
		p->deadline = now + (__u64)cfg->hello_timeout_ms * 1000000ull;
		for (tail = &s->pend; *tail; tail = &(*tail)->next)
			;
		*tail = p;
		s->npend++;
		/* Under pressure everyone gets the short timeout. */
		if (s->npend > cfg->max_pending / 2)
			for (q = s->pend; q; q = q->next)
				if (q->deadline > q->since + (__u64)cfg->hello_timeout_busy_ms * 1000000ull)
					q->deadline = q->since + (__u64)cfg->hello_timeout_busy_ms * 1000000ull;
	}
}

static void lake_status_text(struct lake_sup *s, uid_t who, char *buf, size_t n);

/* The hello of @p has come (or its connection closed). */
static void lake_hello(struct lake_sup *s, struct lake_pend *p)
{
	const struct lake_config *cfg = s->cfg;
	struct lake_worker_client m;
	char why[LAKE_UREPLY_REASON];
	struct lake_uhello h;
	struct lake_wk *w;
	int memfd = -1, rc, fds[2];
	__u64 arena;

	rc = lake_uchan_recv_hello(p->fd, &h, &memfd, why, sizeof(why));
	if (rc == -EAGAIN)
		return;
	if (rc == LAKE_HELLO_STATUS) {
		char *text = malloc(LAKE_USTATUS_MAX);

		if (text) {
			lake_status_text(s, p->uid, text, LAKE_USTATUS_MAX);
			if (send(p->fd, text, strlen(text) + 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
				lake_debug("status: %s", strerror(errno));
			free(text);
		}
		close(p->fd);
		lake_pend_unlink(s, p);
		return;
	}
	if (!rc)
		rc = lake_uchan_check_hello(&h, why, sizeof(why));
	if (!rc)
		rc = lake_uchan_check_fd(memfd, &h, why, sizeof(why));
	if (rc) {
		if (rc == -ECONNRESET)
			lake_info("client %u (pid %d) (uid %u): %s", p->id, (int)p->pid,
				  (unsigned int)p->uid, why);
		else
			lake_warn("client %u (pid %d) (uid %u): refused: %s", p->id, (int)p->pid,
				  (unsigned int)p->uid, why);
		goto refuse;
	}
	arena = h.arena_size;
	w = lake_wk_of_uid(s, p->uid);
	/* The quotas, each refusal saying which. */
	rc = -EUSERS;
	if (s->nclients >= cfg->max_clients)
		snprintf(why, sizeof(why), "lakeD serves %u connections already (max_clients = %u)",
			 s->nclients, cfg->max_clients);
	else if (w && w->nclients >= cfg->max_clients_per_uid)
		snprintf(why, sizeof(why), "uid %u has %u connections to lakeD already "
			 "(max_clients_per_uid = %u)", (unsigned int)p->uid, w->nclients,
			 cfg->max_clients_per_uid);
	else if (arena > ((__u64)cfg->max_arena_mb << 20) && (rc = -E2BIG))
		snprintf(why, sizeof(why), "an arena of %llu MiB is over lakeD's limit of %u MiB per "
			 "client (max_arena_mb; LAKE_ARENA_MB sets the client's)",
			 (unsigned long long)(arena >> 20), cfg->max_arena_mb);
	else if (w && (w->pinned + arena) > ((__u64)cfg->max_pinned_mb_per_uid << 20) &&
		 (rc = -EDQUOT))
		snprintf(why, sizeof(why), "uid %u has %llu MiB of arenas pinned already; %llu MiB "
			 "more would pass max_pinned_mb_per_uid = %u", (unsigned int)p->uid,
			 (unsigned long long)(w->pinned >> 20), (unsigned long long)(arena >> 20),
			 cfg->max_pinned_mb_per_uid);
	else if (!w && arena > ((__u64)cfg->max_pinned_mb_per_uid << 20) && (rc = -EDQUOT))
		snprintf(why, sizeof(why), "an arena of %llu MiB passes max_pinned_mb_per_uid = %u",
			 (unsigned long long)(arena >> 20), cfg->max_pinned_mb_per_uid);
	else if (p->uid != geteuid() && !s->can_switch && (rc = -EPERM))
		snprintf(why, sizeof(why), "lakeD runs as uid %u without CAP_SETUID/CAP_SETGID: it "
			 "serves that user only", (unsigned int)geteuid());
	else
		rc = 0;
	if (rc) {
		lake_warn("client %u (pid %d) (uid %u): refused: %s", p->id, (int)p->pid,
			  (unsigned int)p->uid, why);
		goto refuse;
	}
	if (!w) {
		struct lake_creds c;

		lake_creds_of_uid(p->uid, p->gid, &c);
		w = lake_wk_spawn(s, LAKE_WORKER_USER, p->uid, p->uid == geteuid() ? NULL : &c, -1);
		if (!w) {
			rc = -EAGAIN;
			snprintf(why, sizeof(why), "lakeD cannot start a process for uid %u",
				 (unsigned int)p->uid);
			goto refuse;
		}
		w->next = s->users;
		s->users = w;
		lake_info("uid %u (%s): served by process %d", (unsigned int)p->uid, c.name,
			  (int)w->pid);
	}
	memset(&m, 0, sizeof(m));
	m.magic = LAKE_WORKER_MAGIC;
	m.id = p->id;
	m.pid = p->pid;
	m.uid = p->uid;
	m.hello = h;
	fds[0] = p->fd;
	fds[1] = memfd;
	rc = lake_msg_send(w->ctl, &m, sizeof(m), fds, 2);
	if (rc) {
		snprintf(why, sizeof(why), "lakeD's process for uid %u is gone; try again",
			 (unsigned int)p->uid);
		lake_wk_close(w);
		goto refuse;
	}
	w->nclients++;
	w->pinned += arena;
	w->idle_since = 0;
	s->nclients++;
	close(memfd);
	close(p->fd);
	lake_pend_unlink(s, p);
	return;
refuse:
	if (memfd >= 0)
		close(memfd);
	lake_refuse(s, p->fd, p->id, rc, "%s", why);
	p->fd = -1;
	lake_pend_unlink(s, p);
}

/* ------------------------------------------------------------------------ */
/* Status                                                                   */

static size_t lake_put(char *buf, size_t n, size_t used, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static size_t lake_put(char *buf, size_t n, size_t used, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (used >= n)
		return used;
	va_start(ap, fmt);
	w = vsnprintf(buf + used, n - used, fmt, ap);
	va_end(ap);
	return w < 0 ? used : used + (size_t)w;
}

static void lake_status_text(struct lake_sup *s, uid_t who, char *buf, size_t n)
{
	const struct lake_config *cfg = s->cfg;
	char limits[512], caps[128];
	struct lake_wk *w;
	size_t u = 0;
	unsigned int others = 0;

	lake_config_describe_limits(cfg, limits, sizeof(limits));
	u = lake_put(buf, n, u, "%s (supervisor pid %d, uid %u, capabilities %s), up %llu s\n",
		     s->o->prog, (int)getpid(), (unsigned int)geteuid(),
		     lake_caps_describe(caps, sizeof(caps)),
		     (unsigned long long)((lake_ns() - s->started) / 1000000000ull));
	if (s->kernel)
		u = lake_put(buf, n, u, "kernel channel: %s, process %d (uid %u), %u serving "
			     "threads\n", cfg->device, (int)s->kernel->pid,
			     (unsigned int)s->kernel->uid, cfg->kernel_threads);
	else
		u = lake_put(buf, n, u, "kernel channel: none\n");
	if (s->socket)
		u = lake_put(buf, n, u, "user clients: %u on %s, %u waiting for their hello; "
			     "%llu refused, %llu dropped before their hello\n", s->nclients,
			     s->l.path, s->npend - 1 /* not this request */, (unsigned long long)s->refused,
			     (unsigned long long)s->dropped);
	u = lake_put(buf, n, u, "limits: %s\n", limits);
	u = lake_put(buf, n, u, "%-8s %-8s %-8s %-11s %-9s\n", "uid", "process", "clients",
		     "pinned MiB", "GPU MiB");
	for (w = s->users; w; w = w->next) {
		if (who != 0 && w->uid != who) {
			others++;
			continue;
		}
		u = lake_put(buf, n, u, "%-8u %-8d %-8u %-11llu %-9llu%s\n", (unsigned int)w->uid,
			     (int)w->pid, w->nclients, (unsigned long long)(w->pinned >> 20),
			     (unsigned long long)(w->gpu_bytes >> 20), w->ctl < 0 ? " (stopping)" : "");
	}
	if (others)
		u = lake_put(buf, n, u, "(%u other user%s: shown to root only)\n", others,
			     others == 1 ? "" : "s");
	(void)u;
}

int lake_super_status(const char *socket_path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct lake_ustatus_req req = { .magic = LAKE_USTATUS_MAGIC };
	struct pollfd p;
	char *text;
	ssize_t got;
	int fd;

	if (!socket_path[0]) {
		fprintf(stderr, "lakeD --status: no socket configured (socket = none)\n");
		return 1;
	}
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", socket_path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    send(fd, &req, sizeof(req), MSG_NOSIGNAL) != (ssize_t)sizeof(req)) {
		fprintf(stderr, "lakeD --status: cannot reach lakeD at %s: %s\n", socket_path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	p.fd = fd;
	p.events = POLLIN;
	text = malloc(LAKE_USTATUS_MAX + 1);
	if (!text || poll(&p, 1, 5000) != 1 ||
	    (got = recv(fd, text, LAKE_USTATUS_MAX, 0)) <= 0) {
		fprintf(stderr, "lakeD --status: no answer from %s\n", socket_path);
		free(text);
		close(fd);
		return 1;
	}
	text[got] = 0;
	fputs(text, stdout);
	free(text);
	close(fd);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The loop                                                                 */

static void lake_super_stop_all(struct lake_sup *s)
{
	struct lake_wk *w, *next;
	struct lake_pend *p;
	__u64 end;
	bool left;

	while ((p = s->pend)) {
		lake_refuse(s, p->fd, p->id, -ESHUTDOWN, "lakeD is shutting down");
		p->fd = -1;
		lake_pend_unlink(s, p);
	}
	/* Closing a worker's control socket stops it: it frees its clients'
	 * CUDA resources and exits. */
	if (s->kernel)
		lake_wk_close(s->kernel);
	for (w = s->users; w; w = w->next)
		lake_wk_close(w);
	end = lake_ns() + 10000000000ull;
	do {
		left = false;
		if (s->kernel && s->kernel->pid > 0) {
			if (waitpid(s->kernel->pid, NULL, WNOHANG) == s->kernel->pid)
				s->kernel->pid = 0;
			else
				left = true;
		}
		for (w = s->users; w; w = w->next) {
			if (w->pid <= 0)
				continue;
			if (waitpid(w->pid, NULL, WNOHANG) == w->pid)
				w->pid = 0;
			else
				left = true;
		}
		if (left)
			usleep(10000);
	} while (left && lake_ns() < end);
	if (left)
		lake_warn("processes still running after 10 s: killing them");
	if (s->kernel && s->kernel->pid > 0) {
		kill(s->kernel->pid, SIGKILL);
		waitpid(s->kernel->pid, NULL, 0);
	}
	for (w = s->users; w; w = next) {
		next = w->next;
		if (w->pid > 0) {
			kill(w->pid, SIGKILL);
			waitpid(w->pid, NULL, 0);
		}
		free(w);
	}
	s->users = NULL;
	free(s->kernel);
	s->kernel = NULL;
}

int lake_super_run(const struct lake_super_opts *o)
{
	static struct pollfd pfd[LAKE_SUPER_MAX_POLL];
	static void *who[LAKE_SUPER_MAX_POLL];	/* a lake_pend or a lake_wk */
	static char what[LAKE_SUPER_MAX_POLL];	/* 'p' pending, 'w' worker */
	const struct lake_config *cfg = o->cfg;
	struct lake_sup s;
	char limits[512], caps[128];
	int rc;

	memset(&s, 0, sizeof(s));
	s.o = o;
	s.cfg = cfg;
	s.l.fd = -1;
	s.started = lake_ns();
	if (o->dev_fd >= 0) {
		struct lake_creds c, *cp = NULL;

		if (geteuid() == 0 && strcmp(cfg->kernel_user, "root")) {
			if (lake_creds_of_user(cfg->kernel_user, &c) == 0)
				cp = &c;
			else
				lake_info("kernel_user %s does not exist: the kernel channel's process "
					  "runs as root, without capabilities", cfg->kernel_user);
		}
		s.kernel = lake_wk_spawn(&s, LAKE_WORKER_KERNEL, 0, cp, o->dev_fd);
		/* From now on the worker is lake.ko's daemon: its exit is the
		 * daemon's death, which lake.ko must see (it fails the callers). */
		close(o->dev_fd);
		if (!s.kernel)
			return 1;
		lake_info("kernel channel: served by process %d (%s)", (int)s.kernel->pid,
			  cp ? cp->name : "root, without capabilities");
	}
	if (cfg->socket[0]) {
		rc = lake_ulisten_open(&s.l, cfg->socket, cfg->socket_mode, LAKE_SOCKET_GROUP);
		if (rc && !s.kernel)
			return 1;	/* neither channel: nothing to serve */
		if (rc)
			lake_warn("not serving user-space clients: the socket is unusable");
		s.socket = rc == 0;
	}
	/* What is left of root: starting (and stopping) processes as other users. */
	if (geteuid() == 0) {
		rc = lake_caps_limit((1ull << CAP_SETUID) | (1ull << CAP_SETGID) | (1ull << CAP_KILL));
		if (rc)
			lake_warn("cannot drop capabilities: %s", strerror(-rc));
	} else {
		lake_caps_limit(0);
	}
	s.can_switch = lake_caps_have(CAP_SETUID) && lake_caps_have(CAP_SETGID);
	lake_info("supervisor %d: capabilities %s; %s", (int)getpid(),
		  lake_caps_describe(caps, sizeof(caps)),
		  s.can_switch ? "each user's clients are served by a process of that user" :
		  "serving only this user's clients (no CAP_SETUID/CAP_SETGID)");
	lake_config_describe_limits(cfg, limits, sizeof(limits));
	lake_info("limits: %s", limits);
	if (o->report_fd >= 0 && o->detach_done)
		o->detach_done(o->report_fd);

	while (!atomic_load(o->stop) && !s.status) {
		struct lake_pend *p, *pn;
		struct lake_wk *w, *wn;
		__u64 now = lake_ns(), next = now + 1000000000ull;
		unsigned int n = 0, i;
		int timeout;

		pfd[n].fd = o->stop_fd;
		pfd[n].events = POLLIN;
		what[n++] = 's';
		if (s.socket) {
			pfd[n].fd = s.l.fd;
			pfd[n].events = POLLIN;
			what[n++] = 'l';
		}
		if (s.kernel && s.kernel->ctl >= 0) {
			pfd[n].fd = s.kernel->ctl;
			pfd[n].events = POLLIN;
			who[n] = s.kernel;
			what[n++] = 'w';
		}
		for (w = s.users; w && n < LAKE_SUPER_MAX_POLL; w = w->next) {
			if (w->ctl < 0)
				continue;
			pfd[n].fd = w->ctl;
			pfd[n].events = POLLIN;
			who[n] = w;
			what[n++] = 'w';
			if (w->idle_since && !w->nclients) {
				__u64 at = w->idle_since + (__u64)cfg->worker_idle_s * 1000000000ull;

				next = at < next ? at : next;
			}
		}
		for (p = s.pend; p && n < LAKE_SUPER_MAX_POLL; p = p->next) {
			pfd[n].fd = p->fd;
			pfd[n].events = POLLIN;
			who[n] = p;
			what[n++] = 'p';
			next = p->deadline < next ? p->deadline : next;
		}
		timeout = next > now ? (int)((next - now) / 1000000ull) + 1 : 0;
		rc = poll(pfd, n, timeout);
		if (rc < 0 && errno != EINTR) {
			lake_err("poll: %s", strerror(errno));
			s.status = 1;
			break;
		}
		if (rc > 0) {
			for (i = 0; i < n; i++) {
				if (!pfd[i].revents)
					continue;
				switch (what[i]) {
				case 's':
					break;
				case 'l':
					lake_accept(&s);
					break;
				case 'w':
					w = who[i];
					while (w->ctl >= 0 && pfd[i].revents) {
						struct pollfd q = { .fd = w->ctl, .events = POLLIN };

						if (!lake_wk_read(&s, w)) {
							lake_wk_ended(&s, w);
							break;
						}
						if (poll(&q, 1, 0) != 1)
							break;
					}
					break;
				case 'p':
					lake_hello(&s, who[i]);
					break;
				}
			}
		}
		/* Deadlines: hellos that did not come, users' idle processes. */
		now = lake_ns();
		for (p = s.pend; p; p = pn) {
			pn = p->next;
			if (p->deadline <= now) {
				char why[128];

				snprintf(why, sizeof(why), "no hello within %llu ms",
					 (unsigned long long)((p->deadline - p->since) / 1000000ull));
				lake_pend_drop(&s, p, why);
			}
		}
		for (w = s.users; w; w = wn) {
			wn = w->next;
			if (w->ctl >= 0 && !w->nclients && w->idle_since &&
			    now - w->idle_since >= (__u64)cfg->worker_idle_s * 1000000000ull) {
				lake_info("uid %u: no clients for %u s: its process %d stops",
					  (unsigned int)w->uid, cfg->worker_idle_s, (int)w->pid);
				lake_wk_close(w);
			}
			if (w->ctl < 0 && w->pid > 0 && waitpid(w->pid, NULL, WNOHANG) == w->pid)
				w->pid = 0;
			if (w->ctl < 0 && w->pid <= 0)
				lake_wk_unlink(&s, w);
		}
	}
	if (atomic_load(o->stop))
		lake_info("%s: shutting down", strsignal(atomic_load(o->stop)));
	lake_super_stop_all(&s);
	if (s.socket)
		lake_ulisten_close(&s.l);
	return s.status;
}
