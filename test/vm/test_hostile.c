// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * test_hostile: a daemon that lies to lake.ko (CTest vm_hostile).
 *
 * Runs as root in the test VM with lake.ko (nslots=2) and lake_selftest.ko
 * loaded and no daemon.  The test attaches as lakeD itself and answers the
 * kernel's commands with replies that are well formed and consistent but
 * false: oversized kernel-parameter layouts, layouts and handles of other
 * objects, handles it never created, names without a NUL, inflated counts,
 * outputs it never wrote, garbage.  A child process drives kernel callers
 * through lake_selftest.ko, one step at a time ("load 0", "getfunc 0", ...:
 * see lake_selftest.c), and reports what each caller got.  Every caller
 * must get an error or a truthful result; the harness fails the run on any
 * oops, WARN or lockup in the kernel log.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "lake_vmtest.h"
#include "lake_testvals.h"

#define CUDA_ERROR_UNKNOWN_ 999	/* the spec's protocol error */
#define CUDA_ERROR_NOT_SUPPORTED_ 801
#define NVML_ERROR_INSUFFICIENT_SIZE_ 7

/* ---- the caller: selftest steps, each answered with its result line ------- */

struct steps {
	pid_t pid;
	int rfd;
};

struct step_result {
	int err;
	char line[256];
};

static void steps_start(struct steps *c, const char *const *cmds)
{
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	c->pid = fork();
	ck_assert_int_ge(c->pid, 0);
	if (c->pid == 0) {
		int fd;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (fd = 3; fd < 1024; fd++)
			if (fd != p[1])
				close(fd);
		for (; *cmds; cmds++) {
			struct step_result r = { 0 };
			int rf;
			ssize_t n;

			fd = open(RUN, O_WRONLY);
			r.err = fd < 0 ? errno : write(fd, *cmds, strlen(*cmds)) >= 0 ? 0 : errno;
			if (fd >= 0)
				close(fd);
			rf = open(RESULT, O_RDONLY);
			n = rf < 0 ? -1 : read(rf, r.line, sizeof(r.line) - 1);
			if (rf >= 0)
				close(rf);
			r.line[n > 0 ? n : 0] = 0;
			if (write(p[1], &r, sizeof(r)) != sizeof(r))
				_exit(1);
		}
		_exit(0);
	}
	close(p[1]);
	c->rfd = p[0];
}

static void steps_finish(struct steps *c)
{
	int status;

	ck_assert_int_eq(waitpid(c->pid, &status, 0), c->pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "caller: status %#x", status);
	close(c->rfd);
}

/* ---- the daemon: answers by a handler until the caller reports ------------ */

typedef void (*handler_fn)(struct dmn *d, uint32_t slot, struct lake_msg_hdr *h);

static uint8_t *slot_base(struct dmn *d, uint32_t slot)
{
	return (uint8_t *)dmn_hdr(d, slot);
}

static void *outs(struct dmn *d, uint32_t slot)
{
	return slot_base(d, slot) + LAKE_OUTS_OFFSET;
}

static void *args(struct dmn *d, uint32_t slot)
{
	return slot_base(d, slot) + LAKE_ARGS_OFFSET;
}

/* Where a buffer reference points in the mapping. */
static uint8_t *ref_ptr(struct dmn *d, uint32_t slot, const struct lake_buf_ref *r)
{
	if (r->where == LAKE_BUF_SLOT)
		return slot_base(d, slot) + r->off;
	ck_assert_uint_eq(r->where, LAKE_BUF_ARENA);
	return d->map + d->a.arena_offset + r->off;
}

/* A reply with @result and @len bytes of outputs already in place. */
static void reply(struct dmn *d, uint32_t slot, int32_t result, uint32_t len)
{
	struct lake_msg_hdr *h = dmn_hdr(d, slot);

	h->result = result;
	h->reply_len = len;
	ck_assert_int_eq(dmn_complete(d, slot, h->seq), 0);
}

/* Serves commands with @fn until the caller reports its next step. */
static struct step_result serve(struct dmn *d, struct steps *c, handler_fn fn)
{
	struct step_result r;
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		uint32_t tail = __atomic_load_n(&d->ctrl->sq_tail, __ATOMIC_ACQUIRE);
		struct pollfd p[2] = { { .fd = d->fd, .events = POLLIN },
				       { .fd = c->rfd, .events = POLLIN } };

		if (tail != d->head) {
			uint32_t slot = dmn_next(d);

			fn(d, slot, dmn_hdr(d, slot));
			continue;
		}
		ck_assert_int_ge(poll(p, 2, 100), 0);
		if (p[1].revents & POLLIN) {
			ck_assert_int_eq(read(c->rfd, &r, sizeof(r)), sizeof(r));
			return r;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		ck_assert_msg(t.tv_sec - t0.tv_sec < 30, "no step result in 30 s");
	}
}

/* The step's result line has @want (a "key=value" run). */
#define ck_step(r, want)                                                             \
	do {                                                                         \
		ck_assert_msg((r).err == 0, "step failed: %s", strerror((r).err));   \
		ck_assert_msg(strstr((r).line, want), "step result '%s', want '%s'", \
			      (r).line, want);                                      \
	} while (0)

/* ---- what the handlers answer --------------------------------------------- */

static uint64_t next_module = 0x100000001ull, next_function = 0x200000001ull;
static uint64_t forced_module, forced_function;	/* non-zero: answer with it */
static int layout_lie;		/* 0: the truth, 1: 8 x 256 bytes */
static unsigned int launches, launch_len;
static uint8_t launch_bytes[64];
static int launch_via_extra;

static void honest_layout(struct lake_kparam_layout *l)
{
	memset(l, 0, sizeof(*l));
	l->count = LAKE_FAKE_KPARAMS;
	l->size = 24;
	l->offset[0] = 0;
	l->psize[0] = 8;
	l->offset[1] = 8;
	l->psize[1] = 4;
	l->offset[2] = 16;
	l->psize[2] = 8;
}

/* Modules, functions and launches, answered as configured. */
static void kernels_handler(struct dmn *d, uint32_t slot, struct lake_msg_hdr *h)
{
	switch (h->api) {
	case LAKE_API_cuModuleLoadData:
	case LAKE_API_cuModuleLoad: {
		struct lake_outs_cuModuleLoadData *o = outs(d, slot);

		o->module = forced_module ? forced_module : next_module++;
		reply(d, slot, 0, sizeof(*o));
		break;
	}
	case LAKE_API_cuModuleGetFunction: {
		struct lake_outs_cuModuleGetFunction *o = outs(d, slot);
		unsigned int i;

		o->hfunc = forced_function ? forced_function : next_function++;
		honest_layout(&o->hfunc_layout);
		if (layout_lie) {
			o->hfunc_layout.count = 8;
			o->hfunc_layout.size = 8 * 256;
			for (i = 0; i < 8; i++) {
				o->hfunc_layout.offset[i] = (uint16_t)(256 * i);
				o->hfunc_layout.psize[i] = 256;
			}
		}
		reply(d, slot, 0, sizeof(*o));
		break;
	}
	case LAKE_API_cuLaunchKernel: {
		struct lake_args_cuLaunchKernel *a = args(d, slot);
		const struct lake_buf_ref *r = a->kernelParams.where ? &a->kernelParams : &a->extra;

		launches++;
		launch_via_extra = a->extra.where != LAKE_BUF_NULL;
		launch_len = (unsigned int)r->len;
		if (r->where != LAKE_BUF_NULL && r->len <= sizeof(launch_bytes))
			memcpy(launch_bytes, ref_ptr(d, slot, r), r->len);
		reply(d, slot, 0, 0);
		break;
	}
	default:
		reply(d, slot, 0, 0);
		break;
	}
}

static void kernels_reset(void)
{
	forced_module = forced_function = 0;
	layout_lie = 0;
	launches = launch_len = 0;
	launch_via_extra = 0;
	memset(launch_bytes, 0, sizeof(launch_bytes));
}

/* Runs @cmds against @fn, checking each result against @want. */
static void run_steps(struct dmn *d, handler_fn fn, const char *const *cmds,
		      const char *const *want)
{
	struct steps c;
	unsigned int i;

	steps_start(&c, cmds);
	for (i = 0; cmds[i]; i++) {
		struct step_result r = serve(d, &c, fn);

		ck_step(r, want[i]);
	}
	steps_finish(&c);
}

/* ---- kernel parameter layouts ----------------------------------------------- */

/* The reproduction of the report: a consistent layout of 8 x 256 bytes for a
 * 3-parameter kernel.  lake.ko read past the caller's parameters under its
 * lock; now the lookup is refused and no launch packs anything. */
START_TEST(oversized_layout_refused)
{
	static const char *const cmds[] = { "load 0", "getfunc 0", "launch", NULL };
	static const char *const want[] = { "load: r=0", "getfunc: r=999",
					    "launch: r=801 sync=0", NULL };
	struct dmn d;

	kernels_reset();
	layout_lie = 1;
	dmn_start(&d);
	run_steps(&d, kernels_handler, cmds, want);
	ck_assert_uint_eq(launches, 0);
	dmn_stop(&d);
}
END_TEST

static void assert_packed_test_values(void)
{
	unsigned long long kv0 = LAKE_TEST_KV0, kv2 = LAKE_TEST_KV2;
	unsigned int kv1 = LAKE_TEST_KV1;

	ck_assert_uint_eq(launch_len, 24);
	ck_assert(memcmp(launch_bytes, &kv0, 8) == 0);
	ck_assert(memcmp(launch_bytes + 8, &kv1, 4) == 0);
	ck_assert(memcmp(launch_bytes + 16, &kv2, 8) == 0);
}

/* The truth is taken, and the launch packs the image's 24 bytes, with
 * kernelParams and through extra. */
START_TEST(honest_layout_packs_the_image_layout)
{
	static const char *const cmds[] = { "load 0", "getfunc 0", "launch", "launch 1", NULL };
	static const char *const want[] = { "load: r=0", "getfunc: r=0", "launch: r=0 sync=0",
					    "launch: r=0 sync=0", NULL };
	struct dmn d;

	kernels_reset();
	dmn_start(&d);
	run_steps(&d, kernels_handler, cmds, want);
	ck_assert_uint_eq(launches, 2);
	ck_assert_int_eq(launch_via_extra, 1);
	assert_packed_test_values();
	dmn_stop(&d);
}
END_TEST

/* A live module's handle for another image, one kernel's handle for
 * another kernel: refused.  A handle lakeD never made is its own business:
 * the launch still packs the image's layout. */
START_TEST(handles_of_other_objects_refused)
{
	static const char *const cmds1[] = { "load 0", "getfunc 0", NULL };
	static const char *const want1[] = { "load: r=0", "getfunc: r=0", NULL };
	static const char *const cmds2[] = { "load 1", NULL };
	static const char *const want2[] = { "load: r=999", NULL };
	static const char *const cmds3[] = { "load 1", "getfunc 1", NULL };
	static const char *const want3[] = { "load: r=0", "getfunc: r=0", NULL };
	static const char *const cmds4[] = { "getfunc 2", NULL };
	static const char *const want4[] = { "getfunc: r=999", NULL };
	static const char *const cmds5[] = { "getfunc 2", "launch", NULL };
	static const char *const want5[] = { "getfunc: r=0", "launch: r=0 sync=0", NULL };
	struct dmn d;
	uint64_t first_module, hk_a;

	kernels_reset();
	dmn_start(&d);
	first_module = next_module;
	run_steps(&d, kernels_handler, cmds1, want1);
	forced_module = first_module;		/* image 1 under image 0's handle */
	run_steps(&d, kernels_handler, cmds2, want2);
	forced_module = 0;
	hk_a = next_function;
	run_steps(&d, kernels_handler, cmds3, want3);
	forced_function = hk_a;			/* hk_b under hk_a's handle */
	run_steps(&d, kernels_handler, cmds4, want4);
	forced_function = 0x7e57deadbeefull;	/* a handle lakeD never issued */
	run_steps(&d, kernels_handler, cmds5, want5);
	assert_packed_test_values();
	dmn_stop(&d);
}
END_TEST

/* The sum of the active objects of the kmalloc caches. */
static long long kmalloc_objects(void)
{
	char line[512], name[64];
	long long sum = 0, active;
	FILE *f = fopen("/proc/slabinfo", "r");

	ck_assert_msg(f, "/proc/slabinfo: %s", strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %lld", name, &active) == 2 && !strncmp(name, "kmalloc-", 8))
			sum += active;
	fclose(f);
	return sum;
}

/* 2,000 lookups answered with 2,000 new handles leave one binding, not
 * 2,000 kernel objects. */
START_TEST(new_handles_do_not_grow_kernel_memory)
{
	static const char *const cmds[] = { "load 0", "getfuncs 2000", NULL };
	static const char *const want[] = { "load: r=0", "getfuncs: ok=2000 failed=0", NULL };
	long long before, after;
	struct dmn d;

	kernels_reset();
	dmn_start(&d);
	before = kmalloc_objects();
	run_steps(&d, kernels_handler, cmds, want);
	after = kmalloc_objects();
	ck_assert_msg(after - before < 500, "kmalloc objects grew by %lld", after - before);
	ck_assert_int_eq(stat_get("layout_modules"), 1);
	ck_assert_int_eq(stat_get("layout_functions"), 1);
	dmn_stop(&d);
	ck_assert_int_eq(stat_get("layout_modules"), 0);
}
END_TEST

/* A function of a daemon that went away has no layout any more: a new
 * daemon cannot have its (possibly equal) handles packed by old layouts. */
START_TEST(layouts_flushed_on_detach)
{
	static const char *const cmds1[] = { "load 0", "getfunc 0", NULL };
	static const char *const want1[] = { "load: r=0", "getfunc: r=0", NULL };
	static const char *const cmds2[] = { "launch", NULL };
	static const char *const want2[] = { "launch: r=801 sync=0", NULL };
	struct dmn d;

	kernels_reset();
	dmn_start(&d);
	run_steps(&d, kernels_handler, cmds1, want1);
	ck_assert_int_eq(stat_get("layout_functions"), 1);
	dmn_stop(&d);
	dmn_start(&d);
	ck_assert_int_eq(stat_get("layout_functions"), 0);
	run_steps(&d, kernels_handler, cmds2, want2);
	ck_assert_uint_eq(launches, 0);
	dmn_stop(&d);
}
END_TEST

/* ---- outputs lakeD sizes ---------------------------------------------------- */

static void name_handler(struct dmn *d, uint32_t slot, struct lake_msg_hdr *h)
{
	struct lake_args_cuDeviceGetName *a = args(d, slot);

	ck_assert_uint_eq(h->api, LAKE_API_cuDeviceGetName);
	/* The whole buffer, no NUL, and more after it. */
	memset(ref_ptr(d, slot, &a->name), 'A', a->name.len);
	if (a->name.where == LAKE_BUF_SLOT)
		memset(ref_ptr(d, slot, &a->name) + a->name.len, 'B', 64);
	reply(d, slot, 0, 0);
}

START_TEST(device_name_terminated_within_len)
{
	static const char *const cmds[] = { "getname 16 0", "getname 16 1", NULL };
	static const char *const want[] = { "getname: r=0 nul=1 len=15 guard=1",
					    "getname: r=0 nul=1 len=15 guard=1", NULL };
	struct dmn d;

	dmn_start(&d);
	run_steps(&d, name_handler, cmds, want);
	dmn_stop(&d);
}
END_TEST

static void procs_handler(struct dmn *d, uint32_t slot, struct lake_msg_hdr *h)
{
	struct lake_args_nvmlDeviceGetComputeRunningProcesses *a = args(d, slot);
	struct lake_outs_nvmlDeviceGetComputeRunningProcesses *o = outs(d, slot);

	ck_assert_uint_eq(h->api, LAKE_API_nvmlDeviceGetComputeRunningProcesses);
	memset(ref_ptr(d, slot, &a->infos), 0x11, a->infos.len);
	o->infoCount = 1000;	/* for a capacity of 4 */
	reply(d, slot, 0, sizeof(*o));
}

START_TEST(process_count_clamped_to_capacity)
{
	static const char *const cmds[] = { "procs 4", NULL };
	static const char *const want[] = { "procs: r=7 count=1000 guard=1", NULL };
	struct dmn d;

	dmn_start(&d);
	run_steps(&d, procs_handler, cmds, want);
	dmn_stop(&d);
}
END_TEST

/* "Success", and not a byte written. */
static void lazy_handler(struct dmn *d, uint32_t slot, struct lake_msg_hdr *h)
{
	(void)h;
	reply(d, slot, 0, 0);
}

START_TEST(staged_output_never_returns_stale_bytes)
{
	static const char *const cmds[] = { "stale", NULL };
	static const char *const want[] = { "stale: htod=0 dtoh=0 nonzero=0", NULL };
	struct dmn d;

	dmn_start(&d);
	run_steps(&d, lazy_handler, cmds, want);
	dmn_stop(&d);
}
END_TEST

/* Malformed replies to a name query: each one an error for the caller. */
static unsigned int garbage_round;

static void garbage_handler(struct dmn *d, uint32_t slot, struct lake_msg_hdr *h)
{
	memset(outs(d, slot), 0xC3, LAKE_OUTS_MAX);
	switch (garbage_round++ % 4) {
	case 0:
		reply(d, slot, -5, 0);			/* a negative result */
		break;
	case 1:
		reply(d, slot, 0, 4096);		/* outputs it does not have */
		break;
	case 2:
		h->seq ^= 0x55;				/* another command's reply */
		ck_assert_int_eq(dmn_complete(d, slot, h->seq ^ 0x55), 0);
		break;
	default:
		reply(d, slot, 0x7fffffff, 0);		/* no such vendor result: passed on */
		break;
	}
}

START_TEST(garbage_replies_are_errors)
{
	static const char *const cmds[] = { "getname 16 0", "getname 16 0", "getname 16 0",
					    "getname 16 0", NULL };
	static const char *const want[] = { "getname: r=999", "getname: r=999", "getname: r=999",
					    "getname: r=2147483647", NULL };
	struct dmn d;

	garbage_round = 0;
	dmn_start(&d);
	run_steps(&d, garbage_handler, cmds, want);
	dmn_stop(&d);
}
END_TEST

/* ---- cuModuleLoad: the caller reads the file ---------------------------------- */

static unsigned int loads_seen;
static char load_image[1024];

static void modfile_handler(struct dmn *d, uint32_t slot, struct lake_msg_hdr *h)
{
	struct lake_args_cuModuleLoad *a = args(d, slot);

	ck_assert_uint_eq(h->api, LAKE_API_cuModuleLoad);
	loads_seen++;
	ck_assert_uint_lt(a->fname.len, sizeof(load_image));
	memcpy(load_image, ref_ptr(d, slot, &a->fname), a->fname.len);
	kernels_handler(d, slot, h);
}

START_TEST(module_file_read_by_the_caller)
{
	static const char *const cmds[] = { "modfile /tmp/lake-fifo", "modfile /nonexistent/x.ptx",
					    "modfile /tmp/lake-test-image.ptx", NULL };
	static const char *const want[] = { "modfile: r=1 ", "modfile: r=301 ", "modfile: r=0 ",
					    NULL };
	struct dmn d;

	unlink("/tmp/lake-fifo");
	ck_assert_int_eq(mkfifo("/tmp/lake-fifo", 0600), 0);	/* would block an open */
	loads_seen = 0;
	kernels_reset();
	dmn_start(&d);
	run_steps(&d, modfile_handler, cmds, want);
	ck_assert_uint_eq(loads_seen, 1);
	ck_assert_str_eq(load_image, LAKE_TEST_PTX);	/* its contents, not its path */
	dmn_stop(&d);
	unlink("/tmp/lake-fifo");
}
END_TEST

/* ---- the region, the parameters, the wait bound ------------------------------- */

/* A fork of lakeD has no region, and cannot map it from the inherited file. */
START_TEST(region_not_inherited_by_fork)
{
	struct lake_attach a;
	int fd = dev_open(), status;
	uint8_t *map;
	pid_t pid;

	attach_args(&a);
	ck_errno(ioc(fd, LAKE_IOC_ATTACH, &a), 0);
	map = mmap(NULL, a.map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert(map != MAP_FAILED);
	map[a.arena_offset] = 0x42;
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		void *again = mmap(NULL, a.map_size, PROT_READ, MAP_SHARED, fd, 0);
		int p[2];

		if (again != MAP_FAILED || errno != EPERM)
			_exit(3);	/* mapped it again through the inherited file */
		/* Probe without faulting: the kernel reads the byte for write(). */
		if (pipe(p) || write(p[1], map + a.arena_offset, 1) != -1 || errno != EFAULT)
			_exit(4);	/* the region is there */
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child %s",
		      WIFEXITED(status) && WEXITSTATUS(status) == 3 ? "mapped the region again" :
		      "can read the region");
	munmap(map, a.map_size);
	close(fd);
}
END_TEST

/* A supervisor attaches and hands the channel to the process it starts: that
 * process alone maps the region from then on (lakeD's kernel worker). */
START_TEST(region_handed_off)
{
	struct lake_attach a;
	int fd = dev_open(), other = dev_open(), go[2], status;
	__s32 nr;
	void *map;
	pid_t pid;

	attach_args(&a);
	ck_errno(ioc(fd, LAKE_IOC_ATTACH, &a), 0);
	ck_assert_int_eq(pipe(go), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		uint8_t *m;
		pid_t gc;
		char c;

		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(2);
		m = mmap(NULL, a.map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED)
			_exit(3);	/* the process it was handed to cannot map it */
		m[a.arena_offset] = 0x42;
		gc = fork();	/* ...and its own children cannot */
		if (gc == 0) {
			void *again = mmap(NULL, a.map_size, PROT_READ, MAP_SHARED, fd, 0);

			_exit(again == MAP_FAILED && errno == EPERM ? 0 : 1);
		}
		if (gc < 0 || waitpid(gc, &status, 0) != gc || !WIFEXITED(status) ||
		    WEXITSTATUS(status))
			_exit(4);
		_exit(0);
	}
	close(go[0]);
	/* Nobody, a file that is not the daemon's: refused. */
	nr = 0;
	ck_errno(ioc(fd, LAKE_IOC_HANDOFF, &nr), ESRCH);
	nr = 0x7fffffff;
	ck_errno(ioc(fd, LAKE_IOC_HANDOFF, &nr), ESRCH);
	nr = pid;
	ck_errno(ioc(other, LAKE_IOC_HANDOFF, &nr), EPERM);
	ck_errno(ioc(fd, LAKE_IOC_HANDOFF, NULL), EFAULT);
	ck_errno(ioc(fd, LAKE_IOC_HANDOFF, &nr), 0);
	/* Handed on: the attaching process no longer maps it, nor hands it on. */
	map = mmap(NULL, a.map_size, PROT_READ, MAP_SHARED, fd, 0);
	ck_assert_msg(map == MAP_FAILED && errno == EPERM, "the attacher mapped it after the handoff");
	nr = getpid();
	ck_errno(ioc(fd, LAKE_IOC_HANDOFF, &nr), EPERM);
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "the process handed the channel: exit %d (3: could not map, 4: its child could)",
		      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	close(go[1]);
	close(other);
	close(fd);
}
END_TEST

static int write_param(const char *name, const char *val)
{
	char path[128];
	int fd, err = 0;

	snprintf(path, sizeof(path), PARAM("%s"), name);
	fd = open(path, O_WRONLY);
	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	if (write(fd, val, strlen(val)) < 0)
		err = errno;
	close(fd);
	return err;
}

START_TEST(writable_parameters_bounded)
{
	ck_errno(write_param("timeout_ms", "3600001"), EINVAL);
	ck_errno(write_param("timeout_ms", "-1"), EINVAL);
	ck_errno(write_param("spin_us", "10001"), EINVAL);
	ck_errno(write_param("spin_us", "99999999999"), ERANGE);	/* not even a uint */
	ck_assert_int_eq(read_ll(PARAM("timeout_ms")), 10000);
	ck_assert_int_eq(read_ll(PARAM("spin_us")), 20);
	ck_errno(write_param("timeout_ms", "3600000"), 0);
	ck_errno(write_param("timeout_ms", "10000"), 0);
	ck_errno(write_param("spin_us", "10000"), 0);
	ck_errno(write_param("spin_us", "20"), 0);
}
END_TEST

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* timeout_ms bounds the whole call: a caller that waited for a slot has only
 * what is left for the reply (it used to get timeout_ms again). */
START_TEST(wait_bound_is_total)
{
	static const char *const cmds[] = { "timed-null", NULL };
	struct caller a1, a2;
	struct steps b;
	struct step_result r;
	struct dmn d;
	struct timespec t0;
	uint32_t s1, s2, sb;
	long ms;

	write_str(PARAM("timeout_ms"), "3000");
	dmn_start(&d);
	caller_start(&a1, 1);
	s1 = dmn_next(&d);
	caller_start(&a2, 1);
	s2 = dmn_next(&d);		/* both slots taken */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	steps_start(&b, cmds);		/* waits for a slot */
	usleep(1800 * 1000);
	dmn_reply_nop(&d, s1);
	ck_assert_int_eq(dmn_complete(&d, s1, dmn_hdr(&d, s1)->seq), 0);
	ck_call(&a1, 0);
	sb = dmn_next(&d);		/* b's command, never answered in time */
	ck_assert_int_eq(read(b.rfd, &r, sizeof(r)), sizeof(r));
	ms = elapsed_ms(&t0);
	ck_step(r, "timed-null: r=-110 ");
	ck_assert_msg(ms >= 2800 && ms < 4300, "the call ended after %ld ms of a 3000 ms bound", ms);
	ck_call(&a2, ETIMEDOUT);
	/* Late replies free the abandoned slots. */
	dmn_reply_nop(&d, s2);
	ck_assert_int_eq(dmn_complete(&d, s2, dmn_hdr(&d, s2)->seq), 0);
	dmn_reply_nop(&d, sb);
	ck_assert_int_eq(dmn_complete(&d, sb, dmn_hdr(&d, sb)->seq), 0);
	steps_finish(&b);
	caller_finish(&a1);
	caller_finish(&a2);
	dmn_stop(&d);
	write_str(PARAM("timeout_ms"), "10000");
}
END_TEST

static Suite *hostile_suite(void)
{
	Suite *s = suite_create("lake_hostile");
	TCase *t = tcase_create("lying daemon");

	tcase_add_checked_fixture(t, setup, NULL);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, oversized_layout_refused);
	tcase_add_test(t, honest_layout_packs_the_image_layout);
	tcase_add_test(t, handles_of_other_objects_refused);
	tcase_add_test(t, new_handles_do_not_grow_kernel_memory);
	tcase_add_test(t, layouts_flushed_on_detach);
	tcase_add_test(t, device_name_terminated_within_len);
	tcase_add_test(t, process_count_clamped_to_capacity);
	tcase_add_test(t, staged_output_never_returns_stale_bytes);
	tcase_add_test(t, garbage_replies_are_errors);
	tcase_add_test(t, module_file_read_by_the_caller);
	suite_add_tcase(s, t);

	t = tcase_create("channel");
	tcase_add_checked_fixture(t, setup, NULL);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, region_not_inherited_by_fork);
	tcase_add_test(t, region_handed_off);
	tcase_add_test(t, writable_parameters_bounded);
	tcase_add_test(t, wait_bound_is_total);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return lake_vmtest_main(hostile_suite(), "test_hostile");
}
