// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Credentials and capabilities (see lake_priv.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include "lake_priv.h"

static void lake_groups_of(const char *name, gid_t gid, struct lake_creds *c)
{
	int n = LAKE_MAX_GROUPS;

	if (getgrouplist(name, gid, c->groups, &n) < 0 || n < 1) {
		c->groups[0] = gid;	/* more than we keep, or none known: the primary */
		n = 1;
	}
	c->ngroups = n;
}

void lake_creds_of_uid(uid_t uid, gid_t gid, struct lake_creds *c)
{
	struct passwd pw, *p = NULL;
	char buf[4096];

	memset(c, 0, sizeof(*c));
	c->uid = uid;
	c->gid = gid;
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &p) == 0 && p) {
		snprintf(c->name, sizeof(c->name), "%s", p->pw_name);
		lake_groups_of(p->pw_name, gid, c);
	} else {
		snprintf(c->name, sizeof(c->name), "uid %u", (unsigned int)uid);
		c->groups[0] = gid;
		c->ngroups = 1;
	}
}

int lake_creds_of_user(const char *name, struct lake_creds *c)
{
	struct passwd pw, *p = NULL;
	char buf[4096];

	memset(c, 0, sizeof(*c));
	if (getpwnam_r(name, &pw, buf, sizeof(buf), &p) || !p)
		return -ENOENT;
	c->uid = p->pw_uid;
	c->gid = p->pw_gid;
	snprintf(c->name, sizeof(c->name), "%s", p->pw_name);
	lake_groups_of(p->pw_name, p->pw_gid, c);
	return 0;
}

int lake_creds_assume(const struct lake_creds *c)
{
	/* Raw system calls: glibc's wrappers broadcast to every thread, which a
	 * child of fork() does not have. */
	if (syscall(SYS_setgroups, c->ngroups, c->groups) ||
	    syscall(SYS_setresgid, c->gid, c->gid, c->gid) ||
	    syscall(SYS_setresuid, c->uid, c->uid, c->uid))
		return -errno;
	return 0;
}

static int lake_capget(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };

	memset(d, 0, 2 * sizeof(*d));
	return (int)syscall(SYS_capget, &h, d);
}

int lake_caps_limit(uint64_t keep)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];
	int cap;

	/* The bounding set first: dropping from it needs CAP_SETPCAP, which
	 * goes with the rest below.  Unknown numbers past the last end the loop. */
	for (cap = 0; cap < 64; cap++) {
		if (keep & (1ull << cap))
			continue;
		if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0)
			break;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) && errno != EPERM)
			return -errno;
	}
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (lake_capget(d))
		return -errno;
	d[0].effective &= (__u32)keep;
	d[1].effective &= (__u32)(keep >> 32);
	d[0].permitted &= (__u32)keep;
	d[1].permitted &= (__u32)(keep >> 32);
	d[0].inheritable = d[1].inheritable = 0;
	if (syscall(SYS_capset, &h, d))
		return -errno;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	return 0;
}

bool lake_caps_have(int cap)
{
	struct __user_cap_data_struct d[2];

	if (lake_capget(d))
		return false;
	return (d[cap / 32].effective >> (cap % 32)) & 1;
}

const char *lake_caps_describe(char *buf, size_t n)
{
	static const struct {
		int cap;
		const char *name;
	} names[] = {
		{ CAP_SETUID, "CAP_SETUID" }, { CAP_SETGID, "CAP_SETGID" }, { CAP_KILL, "CAP_KILL" },
		{ CAP_SYS_ADMIN, "CAP_SYS_ADMIN" }, { CAP_DAC_OVERRIDE, "CAP_DAC_OVERRIDE" },
		{ CAP_SETPCAP, "CAP_SETPCAP" }, { CAP_IPC_LOCK, "CAP_IPC_LOCK" },
	};
	struct __user_cap_data_struct d[2];
	size_t used = 0, i;
	unsigned int other = 0;
	int cap;

	buf[0] = 0;
	if (lake_capget(d)) {
		snprintf(buf, n, "unknown");
		return buf;
	}
	for (cap = 0; cap < 64; cap++) {
		bool known = false;

		if (!((d[cap / 32].effective >> (cap % 32)) & 1))
			continue;
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			if (names[i].cap != cap)
				continue;
			known = true;
			if (used < n)
				used += (size_t)snprintf(buf + used, n - used, "%s%s", used ? " " : "",
							 names[i].name);
		}
		other += !known;
	}
	if (other && used < n)
		used += (size_t)snprintf(buf + used, n - used, "%s%u more", used ? " and " : "", other);
	if (!used)
		snprintf(buf, n, "none");
	return buf;
}
