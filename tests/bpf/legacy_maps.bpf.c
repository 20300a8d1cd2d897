// SPDX-License-Identifier: GPL-2.0
/* Legacy map definitions: struct bpf_map_def in SEC("maps"), as libbpf before 1.0 and
 * old samples wrote them. libbpf >= 1.0 (and so bpftool here) rejects this object. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "pkt.h"

struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

struct bpf_map_def SEC("maps") legacy_count = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 2,
};

struct bpf_map_def SEC("maps") legacy_proto = {
	.type = BPF_MAP_TYPE_HASH,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 64,
	.map_flags = BPF_F_NO_PREALLOC,
};

SEC("xdp")
int legacy_xdp(struct xdp_md *ctx)
{
	__u32 zero = 0, proto;
	__u64 one = 1, *val;
	int p;

	val = bpf_map_lookup_elem(&legacy_count, &zero);
	if (val)
		__sync_fetch_and_add(val, 1);
	p = ipv4_protocol((void *)(long)ctx->data, (void *)(long)ctx->data_end);
	if (p < 0)
		return XDP_PASS;
	proto = p;
	val = bpf_map_lookup_elem(&legacy_proto, &proto);
	if (val)
		__sync_fetch_and_add(val, 1);
	else
		bpf_map_update_elem(&legacy_proto, &proto, &one, BPF_NOEXIST);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
