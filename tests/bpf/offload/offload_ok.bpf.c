// SPDX-License-Identifier: GPL-2.0
/* An XDP program every offload target accepts: an ARRAY counter updated with atomic
 * add, a HASH map written through bpf_map_update_elem, a PERF_EVENT_ARRAY (offload-
 * neutral, stays on the host) fed with BPF_F_CURRENT_CPU. Maps hold at most 2 entries
 * (netdevsim's limit). Also tc_shot, a tc program returning TC_ACT_SHOT. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} ok_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} ok_last_len SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} ok_events SEC(".maps");

SEC("xdp")
int xdp_ok(struct xdp_md *ctx)
{
	__u32 key = 0, len = ctx->data_end - ctx->data;
	__u64 *count;

	count = bpf_map_lookup_elem(&ok_count, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	bpf_map_update_elem(&ok_last_len, &key, &len, BPF_ANY);
	if (len > 1500)
		bpf_perf_event_output(ctx, &ok_events, BPF_F_CURRENT_CPU, &len, sizeof(len));
	return XDP_PASS;
}

SEC("tc")
int tc_shot(struct __sk_buff *skb)
{
	__u32 key = 1;
	__u64 *count;

	count = bpf_map_lookup_elem(&ok_count, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
