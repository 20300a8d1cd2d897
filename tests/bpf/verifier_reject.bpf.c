// SPDX-License-Identifier: GPL-2.0
/* Reads the IPv4 header without checking it against data_end: the verifier rejects the
 * load with "invalid access to packet", and with line info its log shows the C line
 * below. vr_map is there to prove rollback (no map may survive the failed load). */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} vr_map SEC(".maps");

SEC("xdp")
int verifier_reject_prog(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u32 zero = 0;
	__u64 *seen;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	seen = bpf_map_lookup_elem(&vr_map, &zero);
	if (seen)
		*seen += 1;
	__u32 unchecked_daddr = ip->daddr;	/* out of bounds: no check against data_end */
	return unchecked_daddr ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
