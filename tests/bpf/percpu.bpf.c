// SPDX-License-Identifier: GPL-2.0
/* Per-CPU maps: every run adds one to pcpu_count[0] and one packet plus the frame length
 * to pcpu_stats[protocol] on the CPU it runs on; summed over CPUs they equal the runs. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "pkt.h"

struct pcpu_stat {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} pcpu_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct pcpu_stat);
} pcpu_stats SEC(".maps");

SEC("xdp")
int percpu_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct pcpu_stat fresh = { .packets = 1, .bytes = data_end - data }, *st;
	__u32 zero = 0, proto;
	__u64 *cnt;
	int p;

	cnt = bpf_map_lookup_elem(&pcpu_count, &zero);
	if (cnt)
		*cnt += 1;
	p = ipv4_protocol(data, data_end);
	proto = p < 0 ? 0xffff : p;
	st = bpf_map_lookup_elem(&pcpu_stats, &proto);
	if (st) {
		st->packets += 1;
		st->bytes += data_end - data;
	} else {
		bpf_map_update_elem(&pcpu_stats, &proto, &fresh, BPF_NOEXIST);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
