// SPDX-License-Identifier: GPL-2.0
/* Event output: rb_submit reserves and submits one struct event per run into the RINGBUF
 * rb; perf_submit sends the same event through the PERF_EVENT_ARRAY perf_events on the
 * current CPU. seq numbers events from 0 in each program (.bss counters). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "pkt.h"

#define EVENT_MAGIC 0x786e662d65767400ULL	/* "xnf-evt" */

/* 24 bytes, no padding (struct.Struct("<QIHBBQ") on the Python side). */
struct event {
	__u64 seq;		/* 0: per-program event number */
	__u32 pkt_len;		/* 8: frame length */
	__u16 proto;		/* 12: IPv4 protocol, 0xffff if not IPv4 */
	__u8 kind;		/* 14: 1 = ring buffer, 2 = perf event */
	__u8 pad;		/* 15 */
	__u64 magic;		/* 16: EVENT_MAGIC */
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf_events SEC(".maps");

__u64 rb_seq;
__u64 perf_seq;
__u64 rb_dropped;

static __always_inline void fill(struct event *e, struct xdp_md *ctx, __u64 seq, __u8 kind)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	int proto = ipv4_protocol(data, data_end);

	e->seq = seq;
	e->pkt_len = data_end - data;
	e->proto = proto < 0 ? 0xffff : proto;
	e->kind = kind;
	e->pad = 0;
	e->magic = EVENT_MAGIC;
}

SEC("xdp")
int rb_submit(struct xdp_md *ctx)
{
	struct event *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);

	if (!e) {
		__sync_fetch_and_add(&rb_dropped, 1);
		return XDP_PASS;
	}
	fill(e, ctx, __sync_fetch_and_add(&rb_seq, 1), 1);
	bpf_ringbuf_submit(e, 0);
	return XDP_PASS;
}

SEC("xdp")
int perf_submit(struct xdp_md *ctx)
{
	struct event e;

	fill(&e, ctx, __sync_fetch_and_add(&perf_seq, 1), 2);
	bpf_perf_event_output(ctx, &perf_events, BPF_F_CURRENT_CPU, &e, sizeof(e));
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
