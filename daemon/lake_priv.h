/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Credentials and capabilities: what lakeD's processes keep of root.
 *
 * The supervisor (lakeD's main process) keeps only CAP_SETUID, CAP_SETGID
 * (to start a process as a client's user) and CAP_KILL (to stop those
 * processes); the workers keep nothing: a user's worker runs as that user,
 * with that user's groups, and the kernel channel's as kernel_user (or as
 * root without capabilities).  No new privileges for any of them
 * (PR_SET_NO_NEW_PRIVS): exec cannot give them back.
 *
 * Raw capget/capset and prctl (not libcap): three system calls, and the
 * offline GPU machine has no libcap headers.
 */
#ifndef LAKE_PRIV_H
#define LAKE_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define LAKE_MAX_GROUPS	64

/* Who a worker becomes. */
struct lake_creds {
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t groups[LAKE_MAX_GROUPS];
	char name[64];		/* the user's name, or "uid N" */
};

/* @uid with @gid and its supplementary groups (from the user database when
 * it knows the user; else @gid alone).  Never fails. */
void lake_creds_of_uid(uid_t uid, gid_t gid, struct lake_creds *c);
/* The user called @name; -ENOENT if there is none. */
int lake_creds_of_user(const char *name, struct lake_creds *c);

/* Becomes @c for good: groups, then gid, then uid (real, effective, saved).
 * Only system calls: safe in a child of fork().  Returns 0 or -errno. */
int lake_creds_assume(const struct lake_creds *c);

/* Keeps only the capabilities in @keep (bits 1 << CAP_*) in every set --
 * bounding, permitted, effective, inheritable, ambient -- and sets
 * PR_SET_NO_NEW_PRIVS.  Returns 0 or -errno. */
int lake_caps_limit(uint64_t keep);
/* Is @cap in the effective set? */
bool lake_caps_have(int cap);
/* The effective set, for messages ("CAP_SETUID CAP_SETGID" or "none"). */
const char *lake_caps_describe(char *buf, size_t n);

#endif /* LAKE_PRIV_H */
