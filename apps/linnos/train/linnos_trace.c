// SPDX-License-Identifier: GPL-2.0
/*
 * linnos-trace: replays a synthetic I/O workload on a file or block device
 * and records each I/O's latency and the device's queue depth, the raw
 * material of LinnOS's training (linnos_train.py).
 *
 * The workload is the original LinnOS generator's: uniformly random
 * 4 KiB-aligned offsets, lognormal request sizes (rounded up to 4 KiB),
 * exponential inter-arrival times (a Poisson process at --rate), with
 * O_DIRECT so that the device, not the page cache, answers.  Reads only by
 * default; --write-fraction adds writes, on regular files only (they
 * overwrite the file's contents; never on a block device).
 *
 * Each I/O is issued at its arrival time by one of --depth worker threads
 * (an I/O arriving while all are busy waits for one).  "pending" is the
 * number of 4 KiB units in flight on the device (reads and writes) when the
 * I/O was issued, not counting itself.
 *
 * Output, CSV sorted by issue time:
 *   submit_us,op,offset,bytes,latency_us,pending_4k
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>

#define UNIT 4096u

struct io {
	uint64_t arrive_ns;	/* planned */
	uint64_t submit_ns;	/* issued */
	uint64_t done_ns;
	uint64_t offset;
	uint32_t bytes;
	uint32_t pending;	/* 4 KiB units in flight when issued */
	bool write;
	int error;		/* errno of a failed I/O */
};

static struct {
	int fd;
	struct io *ios;
	size_t n;
	size_t next;		/* the next I/O to issue */
	uint64_t t0;
	uint32_t max_bytes;
	pthread_mutex_t lock;
	atomic_uint pending;
	atomic_int failed;
} g = { .lock = PTHREAD_MUTEX_INITIALIZER };

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t t)
{
	struct timespec ts = { .tv_sec = t / 1000000000ull, .tv_nsec = t % 1000000000ull };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* xorshift64*: the workload's random numbers (seeded: --seed). */
static uint64_t rnd_state = 1;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return rnd_state * 0x2545f4914f6cdd1dull;
}

static double uniform(void)	/* (0, 1) */
{
	return ((double)(rnd() >> 11) + 0.5) / 9007199254740992.0;
}

static double normal(void)
{
	return sqrt(-2.0 * log(uniform())) * cos(2.0 * M_PI * uniform());
}

static void *worker(void *arg)
{
	void *buf = NULL;

	(void)arg;
	if (posix_memalign(&buf, UNIT, g.max_bytes)) {
		atomic_fetch_add(&g.failed, 1);
		return NULL;
	}
	memset(buf, 0x5a, g.max_bytes);
	for (;;) {
		struct io *io;
		unsigned int units;
		ssize_t r;

		pthread_mutex_lock(&g.lock);
		if (g.next == g.n) {
			pthread_mutex_unlock(&g.lock);
			break;
		}
		io = &g.ios[g.next++];
		pthread_mutex_unlock(&g.lock);

		sleep_until(io->arrive_ns);
		units = io->bytes / UNIT;
		io->submit_ns = now_ns();
		io->pending = atomic_fetch_add(&g.pending, units);
		r = io->write ? pwrite(g.fd, buf, io->bytes, (off_t)io->offset)
			      : pread(g.fd, buf, io->bytes, (off_t)io->offset);
		io->done_ns = now_ns();
		atomic_fetch_sub(&g.pending, units);
		if (r != (ssize_t)io->bytes) {
			io->error = r < 0 ? errno : EIO;
			atomic_fetch_add(&g.failed, 1);
		}
	}
	free(buf);
	return NULL;
}

static int by_submit(const void *a, const void *b)
{
	const struct io *x = a, *y = b;

	return x->submit_ns < y->submit_ns ? -1 : x->submit_ns > y->submit_ns;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: linnos-trace [options] TARGET OUT.csv\n"
		"  TARGET                a file or a block device (read with O_DIRECT)\n"
		"  -n, --count N         I/Os to issue (default 10000)\n"
		"  -r, --rate IOPS       mean arrival rate, exponential inter-arrivals (default 2000)\n"
		"  -m, --size-mu MU      lognormal size: ln(bytes) mean (default 9.0: ~8 KiB median)\n"
		"  -s, --size-sigma S    lognormal size: ln(bytes) standard deviation (default 1.0)\n"
		"      --max-size BYTES  largest request (default 1 MiB)\n"
		"  -w, --write-fraction F  share of writes (default 0); regular files only:\n"
		"                        writes overwrite TARGET's contents\n"
		"  -d, --depth N         I/Os in flight at most: worker threads (default 32)\n"
		"      --span BYTES      offsets in [0, BYTES) (default: TARGET's size)\n"
		"      --seed S          the workload's seed (default 1)\n"
		"      --no-direct       without O_DIRECT (file systems that lack it, e.g. tmpfs:\n"
		"                        then the page cache answers, not the device)\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "rate", required_argument, NULL, 'r' },
		{ "size-mu", required_argument, NULL, 'm' },
		{ "size-sigma", required_argument, NULL, 's' },
		{ "max-size", required_argument, NULL, 'M' },
		{ "write-fraction", required_argument, NULL, 'w' },
		{ "depth", required_argument, NULL, 'd' },
		{ "span", required_argument, NULL, 'S' },
		{ "seed", required_argument, NULL, 'e' },
		{ "no-direct", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	double rate = 2000, mu = 9.0, sigma = 1.0, wfrac = 0;
	unsigned long long count = 10000, span = 0, max_size = 1 << 20, seed = 1;
	unsigned int depth = 32, i;
	bool direct = true, blockdev;
	pthread_t *threads;
	uint64_t t = 0, failed = 0;
	struct stat st;
	FILE *out;
	int c, flags;

	while ((c = getopt_long(argc, argv, "n:r:m:s:w:d:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': count = strtoull(optarg, NULL, 0); break;
		case 'r': rate = strtod(optarg, NULL); break;
		case 'm': mu = strtod(optarg, NULL); break;
		case 's': sigma = strtod(optarg, NULL); break;
		case 'M': max_size = strtoull(optarg, NULL, 0); break;
		case 'w': wfrac = strtod(optarg, NULL); break;
		case 'd': depth = strtoul(optarg, NULL, 0); break;
		case 'S': span = strtoull(optarg, NULL, 0); break;
		case 'e': seed = strtoull(optarg, NULL, 0); break;
		case 'D': direct = false; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		return 2;
	}
	if (!count || count > 100000000 || !(rate > 0) || !(sigma >= 0) || !(wfrac >= 0) ||
	    wfrac > 1 || !depth || depth > 4096 || max_size < UNIT || max_size > (64u << 20)) {
		fprintf(stderr, "linnos-trace: a setting is out of range (see --help)\n");
		return 2;
	}
	if (stat(argv[optind], &st)) {
		fprintf(stderr, "linnos-trace: %s: %s\n", argv[optind], strerror(errno));
		return 1;
	}
	blockdev = S_ISBLK(st.st_mode);
	if (!blockdev && !S_ISREG(st.st_mode)) {
		fprintf(stderr, "linnos-trace: %s is neither a regular file nor a block device\n",
			argv[optind]);
		return 1;
	}
	if (wfrac > 0 && blockdev) {
		fprintf(stderr, "linnos-trace: writes to a block device would destroy its data: refused (use a file on it)\n");
		return 2;
	}
	flags = (wfrac > 0 ? O_RDWR : O_RDONLY) | (direct ? O_DIRECT : 0);
	g.fd = open(argv[optind], flags);
	if (g.fd < 0) {
		fprintf(stderr, "linnos-trace: open %s%s: %s%s\n", argv[optind],
			direct ? " with O_DIRECT" : "", strerror(errno),
			direct && errno == EINVAL ? " (this file system has no O_DIRECT: --no-direct)" : "");
		return 1;
	}
	if (!span) {
		if (blockdev) {
			uint64_t bytes = 0;

			if (ioctl(g.fd, BLKGETSIZE64, &bytes)) {
				perror("linnos-trace: BLKGETSIZE64");
				return 1;
			}
			span = bytes;
		} else {
			span = (unsigned long long)st.st_size;
		}
	}
	max_size &= ~(unsigned long long)(UNIT - 1);
	if (span < max_size)
		max_size = span & ~(unsigned long long)(UNIT - 1);
	if (max_size < UNIT) {
		fprintf(stderr, "linnos-trace: %s is smaller than 4 KiB\n", argv[optind]);
		return 1;
	}
	g.max_bytes = max_size;
	g.n = count;
	g.ios = calloc(count, sizeof(*g.ios));
	threads = calloc(depth, sizeof(*threads));
	if (!g.ios || !threads) {
		fprintf(stderr, "linnos-trace: out of memory\n");
		return 1;
	}

	/* The workload, planned ahead: arrivals, sizes, offsets, reads/writes. */
	rnd_state = seed * 0x9e3779b97f4a7c15ull + 1;
	for (i = 0; i < count; i++) {
		struct io *io = &g.ios[i];
		double bytes = exp(mu + sigma * normal());
		uint64_t units = (uint64_t)ceil(bytes / UNIT), slots;

		t += (uint64_t)(-log(uniform()) / rate * 1e9);
		io->arrive_ns = t;
		if (units < 1)
			units = 1;
		if (units > max_size / UNIT)
			units = max_size / UNIT;
		io->bytes = units * UNIT;
		slots = (span - io->bytes) / UNIT + 1;
		io->offset = (rnd() % slots) * UNIT;
		io->write = uniform() < wfrac;
	}
	g.t0 = now_ns() + 10000000;	/* start in 10 ms, all threads up */
	for (i = 0; i < count; i++)
		g.ios[i].arrive_ns += g.t0;
	for (i = 0; i < depth; i++)
		if (pthread_create(&threads[i], NULL, worker, NULL)) {
			fprintf(stderr, "linnos-trace: cannot start thread %u\n", i);
			return 1;
		}
	for (i = 0; i < depth; i++)
		pthread_join(threads[i], NULL);
	close(g.fd);

	out = fopen(argv[optind + 1], "w");
	if (!out) {
		fprintf(stderr, "linnos-trace: %s: %s\n", argv[optind + 1], strerror(errno));
		return 1;
	}
	/* Issued at their arrival time or later, by several threads: sort by
	 * issue time for the record. */
	qsort(g.ios, count, sizeof(*g.ios), by_submit);
	fprintf(out, "submit_us,op,offset,bytes,latency_us,pending_4k\n");
	for (i = 0; i < count; i++) {
		struct io *io = &g.ios[i];

		if (io->error) {
			failed++;
			continue;
		}
		fprintf(out, "%.3f,%c,%llu,%u,%.3f,%u\n", (double)(io->submit_ns - g.t0) / 1e3,
			io->write ? 'W' : 'R', (unsigned long long)io->offset, io->bytes,
			(double)(io->done_ns - io->submit_ns) / 1e3, io->pending);
	}
	if (fclose(out)) {
		perror("linnos-trace: writing the trace");
		return 1;
	}
	if (failed) {
		fprintf(stderr, "linnos-trace: %llu of %llu I/Os failed (left out of the trace)\n",
			(unsigned long long)failed, count);
		return 1;
	}
	fprintf(stderr, "linnos-trace: %llu I/Os on %s in %.2f s\n", count, argv[optind],
		(double)(now_ns() - g.t0) / 1e9);
	return 0;
}
