// SPDX-License-Identifier: GPL-2.0
/* Programs that break offload rules, one rule each, for the checker's tests:
 * xdp_store writes a map value in place (NFP), xdp_clock calls bpf_ktime_get_ns (NFP),
 * xdp_ringbuf uses a RINGBUF (every target), tc_ok returns TC_ACT_OK (NFP). */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} bad_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} bad_rb SEC(".maps");

SEC("xdp")
int xdp_store(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *count;

	count = bpf_map_lookup_elem(&bad_count, &key);
	if (count)
		*count = ctx->data_end - ctx->data;
	return XDP_PASS;
}

SEC("xdp")
int xdp_clock(struct xdp_md *ctx)
{
	__u32 key = 1;
	__u64 now = bpf_ktime_get_ns();

	bpf_map_update_elem(&bad_count, &key, &now, BPF_ANY);
	return XDP_PASS;
}

SEC("xdp")
int xdp_ringbuf(struct xdp_md *ctx)
{
	__u32 len = ctx->data_end - ctx->data;

	bpf_ringbuf_output(&bad_rb, &len, sizeof(len), 0);
	return XDP_PASS;
}

SEC("tc")
int tc_ok(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
