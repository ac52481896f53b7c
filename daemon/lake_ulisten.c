// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * User clients, the supervisor's side (see lake_uchan.h): the socket, and
 * every hello -- read, checked and answered or handed over -- without ever
 * mapping a client's memory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/magic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include "lake_chan.h"
#include "lake_log.h"
#include "lake_uchan.h"

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
int lake_uchan_check_fd(int fd, const struct lake_uhello *h, char *why, size_t whylen)
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

int lake_uchan_recv_hello(int sock, struct lake_uhello *h, int *fd, char *why, size_t whylen)
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
	struct lake_ustatus_req st;
	struct cmsghdr *cm;
	ssize_t n;

	*fd = -1;
	memset(&u, 0, sizeof(u));
	do
		n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return -EAGAIN;
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
	if (n == (ssize_t)sizeof(st)) {
		memcpy(&st, data, sizeof(st));
		if (st.magic == LAKE_USTATUS_MAGIC) {
			if (*fd >= 0)
				close(*fd);
			*fd = -1;
			return LAKE_HELLO_STATUS;
		}
	}
	if (msg.msg_flags & MSG_CTRUNC)
		LAKE_WHY(-EINVAL, "too many file descriptors with the hello");
	if (n != (ssize_t)sizeof(*h) || (msg.msg_flags & MSG_TRUNC))
		LAKE_WHY(-EINVAL, "the hello has %zd bytes, lakeD expects %zu (not a liblake of "
			 "this version?)", n, sizeof(*h));
	memcpy(h, data, sizeof(*h));
	return LAKE_HELLO_CLIENT;
}

bool lake_uchan_reply(int sock, __u32 client, pid_t server, int status, const char *reason)
{
	struct lake_uhello_reply r;
	ssize_t n;

	memset(&r, 0, sizeof(r));
	r.magic = LAKE_UREPLY_MAGIC;
	r.status = status;
	r.client = client;
	r.version = LAKE_PROTO_VERSION;
	r.spec_hash = LAKE_SPEC_HASH;
	r.uring_version = LAKE_URING_VERSION;
	r.server_pid = status ? 0 : (__u32)server;
	snprintf(r.reason, sizeof(r.reason), "%s", reason ? reason : "");
	do
		n = send(sock, &r, sizeof(r), MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(r);
}

/* ------------------------------------------------------------------------ */
/* The socket                                                               */

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

int lake_ulisten_open(struct lake_ulisten *l, const char *path, unsigned int mode,
		      const char *group)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX }, tmp;
	struct group *gr = NULL;
	struct stat st;
	int err;

	memset(l, 0, sizeof(*l));
	l->fd = -1;
	if (!path || !path[0] || strlen(path) >= sizeof(addr.sun_path)) {
		lake_err("socket path '%s' is empty or longer than %zu bytes", path ? path : "",
			 sizeof(addr.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	snprintf(l->path, sizeof(l->path), "%s", path);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	err = lake_mkdir_parent(l->path);
	if (err) {
		lake_err("%s: cannot create its directory: %s", l->path, strerror(-err));
		return err;
	}
	err = lake_uchan_take_path(l->path, &addr);
	if (err)
		return err;
	l->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (l->fd < 0) {
		err = -errno;
		lake_err("socket: %s", strerror(errno));
		return err;
	}
	/* The file is created with the socket inode's mode less the umask: never
	 * wider than asked, even before the chmod below. */
	if (fchmod(l->fd, mode & 0777)) {
		/* not fatal: chmod below */
	}
	/* Bound under a temporary name and renamed into place once listening,
	 * so whoever sees the socket file can connect (no ECONNREFUSED window
	 * for scripts that wait for the file). */
	lake_uchan_tmp_name(l->path, &tmp);
	unlink(tmp.sun_path);
	if (bind(l->fd, (struct sockaddr *)&tmp, sizeof(tmp))) {
		err = -errno;
		lake_err("%s: cannot bind: %s", tmp.sun_path, strerror(errno));
		goto fail;
	}
	if (group && group[0])
		gr = getgrnam(group);
	if (gr && chown(tmp.sun_path, (uid_t)-1, gr->gr_gid))
		lake_warn("%s: cannot give it to group %s: %s", l->path, group, strerror(errno));
	if (chmod(tmp.sun_path, mode & 0777)) {
		err = -errno;
		lake_err("%s: chmod %04o: %s", tmp.sun_path, mode & 0777, strerror(errno));
		goto fail_unlink;
	}
	if (listen(l->fd, 128)) {
		err = -errno;
		lake_err("%s: listen: %s", l->path, strerror(errno));
		goto fail_unlink;
	}
	/* NOREPLACE: a socket that appeared meanwhile (another lakeD starting)
	 * is not taken over. */
	if (strcmp(tmp.sun_path, l->path) &&
	    renameat2(AT_FDCWD, tmp.sun_path, AT_FDCWD, l->path, RENAME_NOREPLACE) &&
	    (errno != EINVAL || rename(tmp.sun_path, l->path))) {
		err = -errno;
		lake_err("%s: cannot move the socket into place: %s%s", l->path, strerror(errno),
			 errno == EEXIST ? " (another lakeD started there?)" : "");
		goto fail_unlink;
	}
	if (stat(l->path, &st) == 0) {
		l->dev = st.st_dev;
		l->ino = st.st_ino;
	}
	lake_info("serving user-space clients (liblake) on %s (mode %04o%s%s)", l->path,
		  mode & 0777, gr ? ", group " : "", gr ? group : "");
	return 0;
fail_unlink:
	unlink(tmp.sun_path);
fail:
	close(l->fd);
	l->fd = -1;
	return err;
}

void lake_ulisten_close(struct lake_ulisten *l)
{
	struct stat st;

	if (l->fd < 0)
		return;
	close(l->fd);
	l->fd = -1;
	/* Remove the file only if it is still ours. */
	if (stat(l->path, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino)
		unlink(l->path);
}
