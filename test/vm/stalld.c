// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * stalld: a "daemon" that attaches to /dev/lake, maps the shared region and
 * then never answers anything (the VM tests' timeout case).
 *
 *   stalld [DEVICE]
 *
 * Prints "stalld: attached" once attached and mapped, then sleeps until
 * killed; its file is released (and the kernel fails what is still pending)
 * when it dies.  Exit status 1 if it cannot attach.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/lake.h>
#include "lake_proto_gen.h"

int main(int argc, char **argv)
{
	const char *dev = argc > 1 ? argv[1] : "/dev/lake";
	struct lake_attach a = {
		.version = LAKE_PROTO_VERSION,
		.spec_hash = LAKE_SPEC_HASH,
	};
	void *map;
	int fd;

	fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "stalld: %s: %s\n", dev, strerror(errno));
		return 1;
	}
	if (ioctl(fd, LAKE_IOC_ATTACH, &a) < 0) {
		fprintf(stderr, "stalld: attach: %s\n", strerror(errno));
		return 1;
	}
	map = mmap(NULL, a.map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		fprintf(stderr, "stalld: mmap %llu bytes: %s\n",
			(unsigned long long)a.map_size, strerror(errno));
		return 1;
	}
	printf("stalld: attached (pid %d, %u slots): answering nothing\n", getpid(), a.nslots);
	fflush(stdout);
	for (;;)
		pause();
}
