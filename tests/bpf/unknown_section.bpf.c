// SPDX-License-Identifier: GPL-2.0
/* A program in a section no loader knows: must be refused with an error naming it. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("bogus/foo")
int bogus_prog(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
