// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * lake-vmtool: the VM bridge's test tool, for both sides of the VM boundary
 * (test/vm/bridge/bridge.sh runs it on the host, bridge-guest.sh in the VM).
 *
 *   lake-vmtool mbox host FILE send TEXT | recv TIMEOUT_MS
 *   lake-vmtool mbox guest send TEXT | recv TIMEOUT_MS
 *       A mailbox between the test driver on the host and the script in the
 *       guest: a small second ivshmem device (FILE on the host; in the guest
 *       the ivshmem device smaller than LAKE_IVSHMEM_MIN_SIZE).  send waits
 *       until the previous message was taken (at most 60 s); recv prints
 *       the next message, exit 1 on timeout.
 *   lake-vmtool hostile-host FILE SECONDS
 *       A "lakeD" that offers sessions and then writes garbage into the
 *       bridge's shared memory: completion entries for slots and sequence
 *       numbers not in flight, corrupted queue indexes, forged replies and
 *       done_seq words, scribbled layout and arena, flapping sessions,
 *       silences.  Exit 0 once a guest took its sessions, 1 if none did.
 *   lake-vmtool hostile-guest SECONDS
 *       In the guest, with lake.ko unloaded: a "lake.ko" that writes
 *       impossible layouts (lakeD must refuse each: exit 1 if not), then
 *       acks lakeD's sessions and breaks its ring: queue indexes far ahead,
 *       queue entries naming no slot, malformed commands, completions never
 *       consumed, a stopped heartbeat.  Exit 1 if lakeD never offered one.
 *   lake-vmtool foreign
 *       In the guest, with lake.ko unloaded: fills the bridge device's
 *       header page with data that is not LAKE's (lake.ko must then leave
 *       the device alone unless told vm=ADDRESS).
 *   lake-vmtool show FILE | guest
 *       Prints the bridge's header (both sides' words).
 *
 * A test tool: what it writes is meant to be wrong.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include "lake_ivshmem.h"
#include "lake_proto_gen.h"

#define LD(x)		__atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define ST(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELEASE)

static const char *prog = "lake-vmtool";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static uint32_t rnd(void)
{
	static uint64_t s;

	if (!s)
		s = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid();
	s ^= s << 13;
	s ^= s >> 7;
	s ^= s << 17;
	return (uint32_t)(s >> 16);
}

struct shm {
	uint8_t *p;
	size_t len;
};

static struct shm map_file(const char *path)
{
	struct shm m;
	struct stat st;
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st))
		die("%s: %s", path, strerror(errno));
	m.len = (size_t)st.st_size;
	m.p = mmap(NULL, m.len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m.p == MAP_FAILED)
		die("mmap %s: %s", path, strerror(errno));
	close(fd);
	return m;
}

/* The guest's ivshmem devices: the bridge's (big) or the mailbox (small). */
static struct shm map_guest(int want_big)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *e;
	char path[512], buf[256];

	if (!d)
		die("/sys/bus/pci/devices: %s", strerror(errno));
	while ((e = readdir(d))) {
		unsigned long long start, end, flags;
		unsigned int vendor = 0, device = 0, line;
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vendor", e->d_name);
		f = fopen(path, "re");
		if (!f || fscanf(f, "%x", &vendor) != 1)
			vendor = 0;
		if (f)
			fclose(f);
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", e->d_name);
		f = fopen(path, "re");
		if (!f || fscanf(f, "%x", &device) != 1)
			device = 0;
		if (f)
			fclose(f);
		if (vendor != LAKE_IVSHMEM_VENDOR || device != LAKE_IVSHMEM_DEVICE)
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource", e->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		for (line = 0; line < 3 && fgets(buf, sizeof(buf), f); line++)
			;
		fclose(f);
		if (line != 3 || sscanf(buf, "%llx %llx %llx", &start, &end, &flags) != 3 || !end)
			continue;
		if ((end - start + 1 >= LAKE_IVSHMEM_MIN_SIZE) != !!want_big)
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/enable", e->d_name);
		f = fopen(path, "we");
		if (f) {
			fputs("1", f);
			fclose(f);
		}
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource2", e->d_name);
		closedir(d);
		return map_file(path);
	}
	closedir(d);
	die("no %s ivshmem device in this VM", want_big ? "bridge" : "mailbox");
}

/* ------------------------------------------------------------------------ */
/* The mailbox                                                              */

#define MBOX_MAGIC	0x584f424du	/* "MBOX" */
#define MBOX_TEXT	1000

struct mbox_dir {
	uint32_t seq;		/* writer: messages sent */
	uint32_t ack;		/* reader: messages taken */
	char text[MBOX_TEXT];
};

struct mbox {
	uint32_t magic;
	uint32_t pad;
	struct mbox_dir to_guest, to_host;
};

static int mbox(int argc, char **argv)
{
	struct shm m;
	struct mbox *mb;
	struct mbox_dir *out, *in;
	int host, argi;

	if (argc < 4)
		die("usage: mbox host FILE send TEXT|recv MS, or mbox guest send TEXT|recv MS");
	host = !strcmp(argv[2], "host");
	if (host) {
		m = map_file(argv[3]);
		argi = 4;
	} else {
		m = map_guest(0);
		argi = 3;
	}
	if (m.len < sizeof(*mb) || argc < argi + 2)
		die("mailbox too small, or missing arguments");
	mb = (struct mbox *)m.p;
	out = host ? &mb->to_guest : &mb->to_host;
	in = host ? &mb->to_host : &mb->to_guest;
	if (!strcmp(argv[argi], "send")) {
		uint64_t end = now_ms() + 60000;

		while (LD(out->ack) != LD(out->seq)) {
			if (now_ms() > end)
				die("the other side did not take the last message");
			sleep_ms(2);
		}
		snprintf(out->text, sizeof(out->text), "%s", argv[argi + 1]);
		ST(mb->magic, MBOX_MAGIC);
		ST(out->seq, out->seq + 1);
		return 0;
	}
	if (!strcmp(argv[argi], "recv")) {
		uint64_t end = now_ms() + strtoull(argv[argi + 1], NULL, 10);

		while (LD(in->seq) == LD(in->ack)) {
			if (now_ms() > end)
				return 1;
			sleep_ms(2);
		}
		printf("%.*s\n", MBOX_TEXT, in->text);
		ST(in->ack, in->seq);
		return 0;
	}
	die("mbox: send or recv, not '%s'", argv[argi]);
}

/* ------------------------------------------------------------------------ */
/* Hostile host                                                             */

struct ring_view {
	struct lake_ivshmem_hdr *h;
	struct lake_ring_ctrl *ctrl;
	uint32_t *sq;
	uint8_t *slots;
	uint8_t *arena;
	uint64_t arena_size;
	uint32_t nslots;
	struct lake_completion *cq;
	uint32_t cq_entries;
};

/* The guest's layout as a hostile host sees it: clamped to the file. */
static int view(struct shm *m, struct ring_view *out)
{
	struct lake_ivshmem_hdr *h = (struct lake_ivshmem_hdr *)m->p;
	uint64_t ro = h->ring_offset;
	struct lake_attach l = h->layout;
	struct ring_view vv, *v = &vv;

	memset(v, 0, sizeof(*v));
	v->h = h;
	if (ro >= m->len || l.map_size > m->len - ro || !l.nslots || l.nslots > 4096 ||
	    l.slots_offset + (uint64_t)l.nslots * LAKE_SLOT_SIZE > l.map_size ||
	    l.sq_offset + 4ull * l.nslots > l.map_size || h->cq_entries > 8192 ||
	    h->cq_offset + 16ull * h->cq_entries > ro || l.arena_offset + l.arena_size > l.map_size)
		return -1;
	v->ctrl = (struct lake_ring_ctrl *)(m->p + ro);
	v->sq = (uint32_t *)(m->p + ro + l.sq_offset);
	v->slots = m->p + ro + l.slots_offset;
	v->arena = m->p + ro + l.arena_offset;
	v->arena_size = l.arena_size;
	v->nslots = l.nslots;
	v->cq = (struct lake_completion *)(m->p + h->cq_offset);
	v->cq_entries = h->cq_entries;
	if (!v->cq_entries || !v->arena_size)
		return -1;
	*out = vv;
	return 0;
}

/* Offers a session and waits up to @ms for its ack. */
static int offer(struct lake_ivshmem_hdr *h, uint32_t *beat, unsigned int ms)
{
	uint32_t s = rnd() | 1;
	uint64_t end = now_ms() + ms;

	ST(h->cq_tail, 0);
	ST(h->host_proto_version, LAKE_PROTO_VERSION);
	ST(h->host_spec_hash, LAKE_SPEC_HASH);
	ST(h->host_pid, (uint32_t)getpid());
	ST(h->host_session, s);
	while (now_ms() < end) {
		ST(h->host_beat, ++*beat);
		if (LD(h->guest_ack) == s && LD(h->guest_state) == LAKE_IVSHMEM_GUEST_ATTACHED)
			return 1;
		sleep_ms(10);
	}
	return 0;
}

static int hostile_host(const char *path, unsigned int secs)
{
	struct shm m = map_file(path);
	struct lake_ivshmem_hdr *h = (struct lake_ivshmem_hdr *)m.p;
	uint64_t end = now_ms() + secs * 1000ull, next_beat = 0;
	unsigned int taken = 0, actions[10] = { 0 }, i;
	uint32_t beat = 0, head = 0, cq_tail = 0;
	struct ring_view v;

	if (m.len < LAKE_IVSHMEM_MIN_SIZE)
		die("%s is too small for the bridge", path);
	/* The layout as the guest wrote it when it took a session: kept,
	 * since we scribble on the guest's copy. */
	if (!offer(h, &beat, 20000) || view(&m, &v)) {
		fprintf(stderr, "%s: hostile-host: no guest took a session within 20 s\n", prog);
		return 1;
	}
	taken++;
	while (now_ms() < end) {
		unsigned int a = rnd() % 10, n;

		if (now_ms() >= next_beat) {
			ST(h->host_beat, ++beat);
			next_beat = now_ms() + 50;
		}
		actions[a]++;
		switch (a) {
		case 0:	/* completions for anything, some past the queue's size */
			n = 1 + rnd() % 8;
			for (i = 0; i < n; i++)
				v.cq[(cq_tail + i) % v.cq_entries] = (struct lake_completion){
					.slot = rnd() % (v.nslots + 4),
					.seq = rnd() % 4 ? rnd() : rnd() % 64,
					.status = (int32_t)rnd(),
					.reserved = rnd() % 8 ? 0 : rnd(),
				};
			cq_tail += rnd() % 50 ? n : rnd();
			ST(h->cq_tail, cq_tail);
			break;
		case 1:
		case 2:
		case 3: {	/* "answer" what is queued, with garbage replies */
			uint32_t tail = LD(v.ctrl->sq_tail);

			for (n = 0; head != tail && n < v.nslots; head++, n++) {
				uint32_t idx = v.sq[head % v.nslots] % v.nslots;
				struct lake_msg_hdr *mh =
					(struct lake_msg_hdr *)(v.slots + (size_t)idx * LAKE_SLOT_SIZE);
				uint32_t seq = mh->seq;

				mh->result = rnd() % 3 ? (int32_t)(rnd() % 1000) : (int32_t)rnd();
				mh->reply_len = rnd() % 2 ? rnd() % LAKE_OUTS_MAX : rnd();
				for (i = 0; i < 16; i++)
					((uint32_t *)((uint8_t *)mh + LAKE_OUTS_OFFSET))[rnd() % (LAKE_OUTS_MAX / 4)] = rnd();
				ST(mh->done_seq, rnd() % 8 ? seq : rnd());
				v.cq[cq_tail % v.cq_entries] = (struct lake_completion){
					.slot = idx, .seq = rnd() % 8 ? seq : seq + 1,
				};
				cq_tail++;
			}
			ST(v.ctrl->sq_head, head);
			ST(h->cq_tail, cq_tail);
			break;
		}
		case 4:	/* done_seq and results forged in random slots */
			for (i = 0; i < 4; i++) {
				struct lake_msg_hdr *mh = (struct lake_msg_hdr *)(v.slots +
					(size_t)(rnd() % v.nslots) * LAKE_SLOT_SIZE);

				mh->result = (int32_t)rnd();
				ST(mh->done_seq, rnd() % 2 ? mh->seq : rnd());
			}
			break;
		case 5:	/* the guest's words and layout, the queue indexes */
			for (i = 0; i < 8; i++)
				((uint32_t *)h)[rnd() % (256 / 4)] = rnd();
			v.ctrl->sq_tail = rnd();
			ST(v.ctrl->sq_head, rnd());
			break;
		case 6:	/* the arena */
			for (i = 0; i < 64; i++)
				((uint32_t *)v.arena)[rnd() % (v.arena_size / 4)] = rnd();
			break;
		case 7:	/* a new session, or none for a while */
			if (rnd() % 2) {
				ST(h->host_session, 0);
				sleep_ms(50);
			}
			if (offer(h, &beat, 2000) && !view(&m, &v))
				taken++;
			cq_tail = 0;
			head = 0;
			break;
		case 8:	/* silence: the guest must give up on us */
			if (rnd() % 4 == 0) {
				sleep_ms(1500);
				if (offer(h, &beat, 2000) && !view(&m, &v))
					taken++;
				cq_tail = 0;
				head = 0;
			}
			break;
		default:
			sleep_ms(1 + rnd() % 5);
			break;
		}
	}
	ST(h->host_session, 0);
	printf("hostile-host: %u sessions taken; actions:", taken);
	for (i = 0; i < 10; i++)
		printf(" %u", actions[i]);
	printf("\n");
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Hostile guest                                                            */

/* A layout as lake.ko makes it (128 slots, the rest arena). */
static void good_layout(struct lake_ivshmem_hdr *h, size_t len)
{
	lake_ivshmem_std_layout(h, 128, len);
}

/*
 * Impossible layouts, one after another.  Those lakeD can tell at a glance
 * (magic, version) it must not offer a session to; the others it offers
 * one, we take it, and it must withdraw it once it has read the layout.
 * Returns how many of those it refused.
 */
static unsigned int bad_layouts(struct lake_ivshmem_hdr *h, size_t len)
{
	unsigned int k, refused = 0;
	uint32_t beat = 0;

	for (k = 0; k < 9; k++) {
		uint64_t end;
		uint32_t s;

		good_layout(h, len);
		switch (k) {
		case 0: h->magic = ((uint64_t)rnd() << 32) | rnd(); break;
		case 1: h->version = 77; break;
		case 2: h->layout.nslots = 3; break;
		case 3: h->ring_offset = len; break;
		case 4: h->cq_entries = 1; break;
		case 5: h->layout.map_size = ~0ull; break;
		case 6: h->ring_offset = LAKE_IVSHMEM_PAGE; break;	/* on the queue */
		case 7: h->layout.reserved[2] = 1; break;
		default: h->cq_offset = 8; break;		/* on the header */
		}
		ST(h->guest_ack, 0);
		ST(h->guest_epoch, rnd());
		ST(h->guest_state, LAKE_IVSHMEM_GUEST_READY);
		if (k < 2) {
			sleep_ms(300);
			continue;
		}
		for (end = now_ms() + 4000, s = 0; now_ms() < end && !s; sleep_ms(5)) {
			ST(h->guest_beat, ++beat);
			s = LD(h->host_session);
		}
		if (!s)
			continue;
		ST(h->guest_ack, s);
		ST(h->guest_state, LAKE_IVSHMEM_GUEST_ATTACHED);
		for (end = now_ms() + 3000; now_ms() < end; sleep_ms(5)) {
			ST(h->guest_beat, ++beat);
			if (LD(h->host_session) != s) {
				refused++;
				break;
			}
		}
	}
	return refused;
}

static int hostile_guest(unsigned int secs)
{
	struct shm m = map_guest(1);
	struct lake_ivshmem_hdr *h = (struct lake_ivshmem_hdr *)m.p;
	uint64_t end, next_beat = 0;
	unsigned int offers = 0, acked = 0, silent = 0, refused, i;
	uint32_t beat = 0, session = 0, tail = 0;
	struct ring_view v;

	refused = bad_layouts(h, m.len);
	if (refused != 7) {
		fprintf(stderr, "%s: hostile-guest: lakeD refused %u of 7 impossible layouts\n",
			prog, refused);
		return 1;
	}
	end = now_ms() + secs * 1000ull;
	good_layout(h, m.len);
	ST(h->guest_ack, 0);
	ST(h->guest_state, LAKE_IVSHMEM_GUEST_READY);
	view(&m, &v);
	while (now_ms() < end) {
		uint32_t s = LD(h->host_session);
		unsigned int a;

		if (now_ms() >= next_beat && !silent) {
			ST(h->guest_beat, ++beat);
			next_beat = now_ms() + 50;
		}
		if (s && s != session) {	/* take every offer */
			offers++;
			session = s;
			good_layout(h, m.len);
			view(&m, &v);
			v.ctrl->sq_tail = 0;
			v.ctrl->sq_head = 0;
			tail = 0;
			ST(h->cq_head, 0);
			ST(h->guest_ack, s);
			ST(h->guest_state, LAKE_IVSHMEM_GUEST_ATTACHED);
			acked++;
		}
		if (!session) {
			sleep_ms(5);
			continue;
		}
		a = rnd() % 10;
		switch (a) {
		case 0:	/* the tail far ahead: a corrupted ring */
			if (rnd() % 10 == 0)
				ST(v.ctrl->sq_tail, tail + 0x80000000u);
			break;
		case 1:	/* entries naming no slot */
			for (i = 0; i < 4; i++)
				v.sq[(tail + i) % v.nslots] = v.nslots + rnd() % 1000;
			tail += 4;
			ST(v.ctrl->sq_tail, tail);
			break;
		case 2:
		case 3:
		case 4: {	/* malformed commands: unknown APIs, bad lengths, NOPs */
			uint32_t idx = rnd() % v.nslots;
			struct lake_msg_hdr *mh =
				(struct lake_msg_hdr *)(v.slots + (size_t)idx * LAKE_SLOT_SIZE);

			memset(mh, 0, sizeof(*mh));
			switch (rnd() % 3) {
			case 0: mh->api = LAKE_API_MAX + 1 + rnd() % 1000; break;
			case 1: mh->api = LAKE_API_NOP; break;
			default: mh->api = 1 + rnd() % LAKE_API_MAX; break;
			}
			mh->flags = rnd() % 4;
			mh->client = rnd() % 16;
			mh->seq = rnd();
			mh->args_len = rnd() % 2 ? rnd() % 64 : rnd();
			mh->present = rnd();
			v.sq[tail % v.nslots] = idx;
			tail++;
			ST(v.ctrl->sq_tail, tail);
			break;
		}
		case 5:	/* consume completions, or not */
			if (rnd() % 3)
				ST(h->cq_head, LD(h->cq_tail));
			break;
		case 6:	/* the consumer index written by the guest */
			ST(v.ctrl->sq_head, rnd());
			break;
		case 7:	/* a silence: lakeD must give us up, then offer again */
			if (rnd() % 8 == 0)
				silent = 1;
			else
				silent = 0;
			break;
		case 8:	/* another epoch: a "reboot" */
			if (rnd() % 8 == 0) {
				ST(h->guest_epoch, rnd());
				ST(h->guest_ack, 0);
				ST(h->guest_state, LAKE_IVSHMEM_GUEST_READY);
				session = 0;
			}
			break;
		default:
			sleep_ms(1 + rnd() % 3);
			break;
		}
		if (LD(h->host_session) == 0 && session) {
			session = 0;	/* lakeD gave us up */
			ST(h->guest_ack, 0);
			ST(h->guest_state, LAKE_IVSHMEM_GUEST_READY);
			ST(h->guest_epoch, rnd());
		}
	}
	ST(h->guest_ack, 0);
	ST(h->guest_state, LAKE_IVSHMEM_GUEST_ABSENT);
	printf("hostile-guest: lakeD refused %u impossible layouts, then offered %u sessions "
	       "(%u acked) to a guest breaking its ring\n", refused, offers, acked);
	return offers ? 0 : 1;
}

/* ------------------------------------------------------------------------ */

static int show(const char *what)
{
	struct shm m = strcmp(what, "guest") ? map_file(what) : map_guest(1);
	struct lake_ivshmem_hdr *h = (struct lake_ivshmem_hdr *)m.p;

	printf("magic %016llx version %u proto %u spec %016llx\n",
	       (unsigned long long)h->magic, h->version, h->proto_version,
	       (unsigned long long)h->spec_hash);
	printf("guest: state %u epoch %08x ack %08x beat %u cq_head %u\n", h->guest_state,
	       h->guest_epoch, h->guest_ack, h->guest_beat, h->cq_head);
	printf("host: session %08x beat %u pid %u cq_tail %u\n", h->host_session, h->host_beat,
	       h->host_pid, h->cq_tail);
	printf("layout: cq %llu x%u, ring %llu: %u slots, arena %llu at %llu, %llu bytes\n",
	       (unsigned long long)h->cq_offset, h->cq_entries,
	       (unsigned long long)h->ring_offset, h->layout.nslots,
	       (unsigned long long)h->layout.arena_size,
	       (unsigned long long)h->layout.arena_offset,
	       (unsigned long long)h->layout.map_size);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "mbox"))
		return mbox(argc, argv);
	if (argc == 4 && !strcmp(argv[1], "hostile-host"))
		return hostile_host(argv[2], (unsigned int)atoi(argv[3]));
	if (argc == 3 && !strcmp(argv[1], "hostile-guest"))
		return hostile_guest((unsigned int)atoi(argv[2]));
	if (argc == 3 && !strcmp(argv[1], "show"))
		return show(argv[2]);
	if (argc == 2 && !strcmp(argv[1], "foreign")) {
		struct shm m = map_guest(1);

		memset(m.p, 0xa5, LAKE_IVSHMEM_PAGE);
		return 0;
	}
	fprintf(stderr, "usage: %s mbox host FILE|guest send TEXT|recv MS; hostile-host FILE SECS; "
		"hostile-guest SECS; foreign; show FILE|guest\n", prog);
	return 2;
}
