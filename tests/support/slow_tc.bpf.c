// SPDX-License-Identifier: GPL-2.0
/* A slow tc program: holds every frame for delay_ns of busy waiting, then passes it on
 * unchanged (test kit: a neighbour at pping's hooks whose run time is known). */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u64 delay_ns = 1000000;

static long waited(__u64 index, void *ctx)
{
	__u64 *start = ctx;

	return bpf_ktime_get_ns() - *start >= delay_ns; /* 1 stops the loop */
}

SEC("tc")
int slow(struct __sk_buff *skb)
{
	__u64 start = bpf_ktime_get_ns();

	/* bounded: 2^23 iterations of a helper call, well under a second */
	bpf_loop(1 << 23, waited, &start, 0);
	return TC_ACT_UNSPEC;
}
