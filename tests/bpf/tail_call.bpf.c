// SPDX-License-Identifier: GPL-2.0
/* Tail calls through a PROG_ARRAY whose slots 0 and 2 are statically initialised with
 * programs. tail_entry jumps to the slot in tail_cfg[0]: slot 0 returns XDP_DROP, slot 2
 * returns XDP_TX, an empty slot falls through to XDP_PASS. tail_hits counts per target. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} tail_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} tail_cfg SEC(".maps");

static __always_inline void hit(__u32 slot)
{
	__u64 *val = bpf_map_lookup_elem(&tail_hits, &slot);

	if (val)
		__sync_fetch_and_add(val, 1);
}

SEC("xdp")
int tail_drop(struct xdp_md *ctx)
{
	hit(0);
	return XDP_DROP;
}

SEC("xdp")
int tail_tx(struct xdp_md *ctx)
{
	hit(2);
	return XDP_TX;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, int (void *));
} jmp_table SEC(".maps") = {
	.values = { [0] = (void *)&tail_drop, [2] = (void *)&tail_tx },
};

SEC("xdp")
int tail_entry(struct xdp_md *ctx)
{
	__u32 zero = 0, *slot = bpf_map_lookup_elem(&tail_cfg, &zero);

	if (slot)
		bpf_tail_call(ctx, &jmp_table, *slot);
	hit(1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
