// SPDX-License-Identifier: GPL-2.0
/* The README's example object: counts frames at XDP, passes the first `limit` (0: all)
 * and drops the rest. `limit` is set in the spec before loading (spec.rodata["limit"]). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u64 limit = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 *seen = bpf_map_lookup_elem(&counters, &zero);

	if (!seen)
		return XDP_ABORTED;
	if (__sync_fetch_and_add(seen, 1) >= limit && limit)
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
