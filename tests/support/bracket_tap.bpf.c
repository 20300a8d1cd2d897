// SPDX-License-Identifier: GPL-2.0
/* Bracket tap: timestamps each frame immediately before and after the program under
 * test at one tc hook, so that the time the program stamped the frame is known to lie
 * between the two (test kit, tests/support/bracket.py).
 *
 * tap_*_first goes first in its tcx hook and records ktime, the CPU, a per-CPU sequence
 * number and the first SNAP bytes of the frame; tap_*_last goes last and records ktime,
 * the CPU and the same sequence number: on one CPU the programs of a hook run back to
 * back for one frame, so (cpu, seq) pairs the two records of the same frame. Records
 * are submitted without wake-ups (the reader polls), so the tap adds no wake-up cost
 * to the window it measures. Every program passes the frame on unchanged.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#define SNAP 128

char LICENSE[] SEC("license") = "GPL";

enum { TAP_INGRESS = 0, TAP_EGRESS = 1 };
enum { TAP_FIRST = 0, TAP_LAST = 2 };

/* 32-byte header (struct.Struct("<QQIIIHBB") on the Python side), then SNAP bytes for
 * first records only. */
struct tap_record {
	__u64 ktime;		/* 0: bpf_ktime_get_ns() */
	__u64 seq;		/* 8: per-CPU frame number, the same in both records */
	__u32 cpu;		/* 16 */
	__u32 len;		/* 20: skb->len */
	__u32 captured;		/* 24: bytes of data that follow (first records) */
	__u16 pad;		/* 26 */
	__u8 hook;		/* 28: TAP_INGRESS / TAP_EGRESS */
	__u8 place;		/* 29: TAP_FIRST / TAP_LAST */
};

struct tap_frame {
	struct tap_record r;
	__u8 data[SNAP];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24);
} tap_events SEC(".maps");

/* Per CPU and hook: the number of the frame the first program saw last. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 2);
} tap_seq SEC(".maps");

/* Records the ring had no room for; the capture is incomplete if this is not 0. */
__u64 tap_dropped;

static __always_inline void first(struct __sk_buff *skb, __u32 hook)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 *seq = bpf_map_lookup_elem(&tap_seq, &hook);
	struct tap_frame *f;
	__u64 n = skb->len;

	if (!seq)
		return;
	*seq += 1;
	f = bpf_ringbuf_reserve(&tap_events, sizeof(*f), 0);
	if (!f) {
		__sync_fetch_and_add(&tap_dropped, 1);
		return;
	}
	/* clamped after the barrier, so that the verifier sees a length in [1, SNAP] */
	asm volatile("" : "+r"(n));
	if (n > SNAP)
		n = SNAP;
	if (n < 1)
		n = 1;
	if (bpf_skb_load_bytes(skb, 0, f->data, n))
		n = 0;
	f->r.ktime = now;
	f->r.seq = *seq;
	f->r.cpu = bpf_get_smp_processor_id();
	f->r.len = skb->len;
	f->r.captured = n;
	f->r.pad = 0;
	f->r.hook = hook;
	f->r.place = TAP_FIRST;
	bpf_ringbuf_submit(f, BPF_RB_NO_WAKEUP);
}

static __always_inline void last(struct __sk_buff *skb, __u32 hook)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 *seq = bpf_map_lookup_elem(&tap_seq, &hook);
	struct tap_record *r;

	if (!seq)
		return;
	r = bpf_ringbuf_reserve(&tap_events, sizeof(*r), 0);
	if (!r) {
		__sync_fetch_and_add(&tap_dropped, 1);
		return;
	}
	r->ktime = now;
	r->seq = *seq;
	r->cpu = bpf_get_smp_processor_id();
	r->len = skb->len;
	r->captured = 0;
	r->pad = 0;
	r->hook = hook;
	r->place = TAP_LAST;
	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
}

SEC("tc")
int tap_ingress_first(struct __sk_buff *skb)
{
	first(skb, TAP_INGRESS);
	return TC_ACT_UNSPEC; /* TCX_NEXT: the next program runs */
}

SEC("tc")
int tap_ingress_last(struct __sk_buff *skb)
{
	last(skb, TAP_INGRESS);
	return TC_ACT_UNSPEC; /* TCX_NEXT: the next program runs */
}

SEC("tc")
int tap_egress_first(struct __sk_buff *skb)
{
	first(skb, TAP_EGRESS);
	return TC_ACT_UNSPEC; /* TCX_NEXT: the next program runs */
}

SEC("tc")
int tap_egress_last(struct __sk_buff *skb)
{
	last(skb, TAP_EGRESS);
	return TC_ACT_UNSPEC; /* TCX_NEXT: the next program runs */
}
