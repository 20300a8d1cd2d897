// SPDX-License-Identifier: GPL-2.0
/* The example plugin's data path: count every frame in example_pkts[0] and their bytes in
 * example_pkts[1], and return the verdict set from Python before load (.rodata). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

volatile const __u32 cfg_verdict = XDP_PASS;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} example_pkts SEC(".maps");

SEC("xdp")
int example_count(struct xdp_md *ctx)
{
	__u32 packets = 0, bytes = 1;
	__u64 *value;

	value = bpf_map_lookup_elem(&example_pkts, &packets);
	if (value)
		__sync_fetch_and_add(value, 1);
	value = bpf_map_lookup_elem(&example_pkts, &bytes);
	if (value)
		__sync_fetch_and_add(value, ctx->data_end - ctx->data);
	return cfg_verdict;
}

char LICENSE[] SEC("license") = "GPL";
