// SPDX-License-Identifier: GPL-2.0
/* Baselines for bench/pping_prog.py: programs of pping's hooks that do nothing but
 * pass the packet, so pping's per-packet cost can be given as a ratio. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tc")
int empty_tc(struct __sk_buff *skb)
{
	return TC_ACT_UNSPEC;
}

SEC("xdp")
int empty_xdp(struct xdp_md *ctx)
{
	return XDP_PASS;
}
