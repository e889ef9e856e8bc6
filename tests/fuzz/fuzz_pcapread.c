/*
 * fuzz_pcapread.c: libFuzzer harness for the capture reader (pcapread.c):
 * the input is a whole media.pcap, as a crash, a full disk or someone
 * else's tool may leave it. It is written to a memfd and read twice
 * (pcapr_rewind), checking that every datagram lies inside the mapping,
 * the two passes agree, and the counters add up.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include "pcapread.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint8_t sink;

static uint64_t pass(struct pcapr *r, uint64_t *bytes)
{
	struct pcapr_pkt pkt;
	uint64_t n = 0;

	*bytes = 0;
	while (pcapr_next(r, &pkt) == 0) {
		if (pkt.len)        /* every byte readable (ASan) */
			sink ^= pkt.data[0] ^ pkt.data[pkt.len - 1];
		if (pkt.family != 2 && pkt.family != 10)
			abort();
		*bytes += pkt.len;
		++n;
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pcapr *r = NULL;
	char path[64];
	uint64_t n1, n2, b1, b2;
	int fd = memfd_create("fuzz_pcap", 0);

	if (fd < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	(void)snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (pcapr_open(&r, path) == 0) {
		const struct pcapr_stats *st;

		n1 = pass(r, &b1);
		pcapr_rewind(r);
		n2 = pass(r, &b2);
		st = pcapr_stats(r);
		if (n1 != n2 || b1 != b2 || st->udp < n1 ||
		    st->records < n1)
			abort();
		pcapr_free(r);
	}
	close(fd);
	return 0;
}
