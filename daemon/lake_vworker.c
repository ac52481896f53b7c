// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * A VM's worker process (see lake_worker.h and lake_vchan.h): serves one
 * VM's lake.ko over the file the supervisor opened and handed over, asks
 * the supervisor before pinning the guest's arena (it holds the quota of
 * all VMs), and reports its usage for lakeD --status.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include "lake_log.h"
#include "lake_server.h"
#include "lake_vchan.h"
#include "lake_vendor.h"
#include "lake_worker.h"

#define LAKE_VWORKER_ASK_MS	5000	/* the supervisor answers a pin request within this */

struct lake_vworker {
	const struct lake_worker_init *init;
	struct lake_vendor_state vendor;
	int ctl;
	pthread_mutex_t lock;		/* ctl sends, and the answer below */
	pthread_cond_t answered;
	__u32 next_id;
	__u32 waiting_id;		/* the request a thread waits for, 0: none */
	bool have_answer;
	struct lake_worker_pin_reply answer;
	bool stopping;			/* nobody will answer any more */
};

/* Lock held.  @serving goes in the report's clients (1: a session). */
static void lake_vworker_send(struct lake_vworker *w, __u32 type, __u32 id, __u64 bytes,
			      bool serving)
{
	lake_worker_report_send(w->ctl, type, id, serving, bytes);
}

static bool lake_vworker_pin_ask(void *arg, __u64 bytes, char *why, size_t whylen)
{
	struct lake_vworker *w = arg;
	const struct lake_worker_pin_reply *a = &w->answer;
	struct timespec until;
	bool granted = false;
	int rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += LAKE_VWORKER_ASK_MS / 1000;
	pthread_mutex_lock(&w->lock);
	if (!++w->next_id)	/* 0 means "nobody waits" */
		w->next_id = 1;
	w->waiting_id = w->next_id;
	w->have_answer = false;
	lake_vworker_send(w, LAKE_REPORT_PIN_ASK, w->waiting_id, bytes, false);
	while (!w->have_answer && !w->stopping && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&w->answered, &w->lock, &until);
	if (!w->have_answer) {
		snprintf(why, whylen, "the supervisor did not answer the request within %d ms",
			 LAKE_VWORKER_ASK_MS);
	} else if (a->granted) {
		granted = true;
	} else if (a->refusal == LAKE_PIN_OVER_FILE) {
		snprintf(why, whylen, "the supervisor refused: more than this VM's %llu MiB file",
			 (unsigned long long)(a->file_size >> 20));
	} else {
		snprintf(why, whylen, "the supervisor refused: VMs' pinned arenas would exceed "
			 "vm_pin_max_mb (%llu MiB; %llu MiB pinned now)",
			 (unsigned long long)(a->limit >> 20),
			 (unsigned long long)(a->pinned_vms >> 20));
	}
	w->waiting_id = 0;
	pthread_mutex_unlock(&w->lock);
	return granted;
}

static void lake_vworker_pin_return(void *arg, __u64 bytes)
{
	struct lake_vworker *w = arg;

	pthread_mutex_lock(&w->lock);
	lake_vworker_send(w, LAKE_REPORT_UNPIN, 0, bytes, false);
	pthread_mutex_unlock(&w->lock);
}

/* An answer came.  One nobody waits for any more is given back at once. */
static void lake_vworker_answer(struct lake_vworker *w, const struct lake_worker_pin_reply *r)
{
	pthread_mutex_lock(&w->lock);
	if (w->waiting_id && r->id == w->waiting_id) {
		w->answer = *r;
		w->have_answer = true;
		pthread_cond_broadcast(&w->answered);
	} else if (r->granted) {
		lake_vworker_send(w, LAKE_REPORT_UNPIN, 0, r->bytes, false);
	}
	pthread_mutex_unlock(&w->lock);
}

/* A hint where a GPU is present but this user cannot use it. */
static void lake_vworker_gpu_hint(void)
{
	if (access("/dev/nvidiactl", F_OK) == 0 && access("/dev/nvidiactl", R_OK | W_OK))
		lake_warn("uid %u cannot open /dev/nvidiactl: no GPU for this VM (vm_user must be "
			  "a user who may use the GPU)", (unsigned int)geteuid());
}

int lake_vworker_run(const struct lake_worker_init *init, int ctl, int shm_fd)
{
	const struct lake_config *cfg = &init->cfg;
	struct lake_srv_limits limits = {
		.conn_gpu_bytes = (__u64)cfg->max_gpu_mb_per_client << 20,
		.max_threads = cfg->max_threads_per_client,
	};
	struct lake_vchan_opts o;
	struct lake_vchan *vc;
	struct lake_vworker w;
	pthread_condattr_t ca;
	__u64 last_gpu = 0;
	bool last_serving = false;
	int rc;

	/*
	 * Not dumpable: no other process of this user (the other VMs' workers
	 * run as the same vm_user) may ptrace this one or read its memory --
	 * the guest's arena and its CUDA state.
	 */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0))
		lake_warn("prctl(PR_SET_DUMPABLE): %s", strerror(errno));
	if (init->vm >= cfg->vm_nshm) {
		lake_err("VM %u: not configured", init->vm);
		return 2;
	}
	memset(&w, 0, sizeof(w));
	w.init = init;
	w.ctl = ctl;
	pthread_mutex_init(&w.lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w.answered, &ca);
	pthread_condattr_destroy(&ca);
	lake_vendor_load(&w.vendor);
	if (!lake_vendor_gpu_init(&w.vendor, true) && !w.vendor.fake)
		lake_vworker_gpu_hint();
	lake_srv_set_limits(&limits);

	memset(&o, 0, sizeof(o));
	o.fd = shm_fd;
	o.path = cfg->vm_shm[init->vm];
	o.spin_us = cfg->spin_us;
	o.threads = cfg->vm_threads;
	o.stop = lake_worker_stop_flag();
	o.vendor = &w.vendor;
	o.guest_timeout_ms = cfg->vm_guest_timeout_ms;
	o.pin_ask = lake_vworker_pin_ask;
	o.pin_return = lake_vworker_pin_return;
	o.pin_arg = &w;
	rc = lake_vchan_start(&vc, &o);
	if (rc) {
		lake_vendor_unload(&w.vendor);
		return 1;
	}
	lake_info("serving VM %u (%s) as uid %u: %u serving thread%s, spin %u us after each "
		  "command", init->vm, o.path, (unsigned int)geteuid(), o.threads,
		  o.threads == 1 ? "" : "s", o.spin_us);
	while (!atomic_load(lake_worker_stop_flag())) {
		struct pollfd p[2] = {
			{ .fd = ctl, .events = POLLIN },
			{ .fd = lake_worker_stop_eventfd(), .events = POLLIN },
		};
		struct lake_worker_pin_reply r;
		bool serving = lake_vchan_serving(vc);

		if (lake_srv_total_gpu_bytes() != last_gpu || serving != last_serving) {
			last_gpu = lake_srv_total_gpu_bytes();	/* for the supervisor's status */
			last_serving = serving;
			pthread_mutex_lock(&w.lock);
			lake_vworker_send(&w, LAKE_REPORT_USAGE, 0, 0, serving);
			pthread_mutex_unlock(&w.lock);
		}
		rc = poll(p, 2, 500);
		if (rc <= 0 || !(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		rc = lake_msg_recv(ctl, &r, sizeof(r), NULL, 0, NULL);
		if (rc == -EAGAIN)
			continue;
		if (rc == -ENOTCONN || (rc && rc != -EPROTO))
			break;	/* the supervisor is gone or stops us */
		if (rc || r.magic != LAKE_WORKER_MAGIC) {
			lake_err("a malformed message from the supervisor: ignored");
			continue;
		}
		lake_vworker_answer(&w, &r);
	}
	lake_worker_request_stop();
	pthread_mutex_lock(&w.lock);
	w.stopping = true;
	pthread_cond_broadcast(&w.answered);
	pthread_mutex_unlock(&w.lock);
	lake_vchan_stop(vc);	/* the guest's callers fail at once; its resources go */
	lake_vendor_unload(&w.vendor);
	pthread_cond_destroy(&w.answered);
	pthread_mutex_destroy(&w.lock);
	return 0;
}
