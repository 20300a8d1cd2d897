// SPDX-License-Identifier: GPL-2.0
/* Counts every frame into an ARRAY and IPv4 frames per protocol into a HASH; passes all.
 * Used by the loader tests (PROG_TEST_RUN) and the attach tests (real packets on veth). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "pkt.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} pkt_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} proto_count SEC(".maps");

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	__u32 zero = 0, proto;
	__u64 one = 1, *val;
	int p;

	val = bpf_map_lookup_elem(&pkt_count, &zero);
	if (val)
		__sync_fetch_and_add(val, 1);

	p = ipv4_protocol((void *)(long)ctx->data, (void *)(long)ctx->data_end);
	if (p < 0)
		return XDP_PASS;
	proto = p;
	val = bpf_map_lookup_elem(&proto_count, &proto);
	if (val)
		__sync_fetch_and_add(val, 1);
	else
		bpf_map_update_elem(&proto_count, &proto, &one, BPF_NOEXIST);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
