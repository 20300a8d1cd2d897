/* SPDX-License-Identifier: GPL-2.0 */
/* What every pifo_sched BPF qdisc object shares (struct_ops Qdisc_ops, Linux 6.16+ with
 * NET_SCH_BPF): one copy for the PIFO framework (xnf_qdisc.h, and so pifo_qdisc.bpf.c and
 * every rank object built on xnf_rank.h) and for FQ-CoDel (fq_codel_qdisc.bpf.c).
 *
 *   the kernel types (local, partial, CO-RE) and the qdisc kfuncs;
 *   the common configuration (.rodata) and state and counters (.bss), under the names
 *   bpf_qdisc.py sets and reads for every object: flows by mark, priority or port
 *   (port_flows), limit, hold, the shaper's rate and burst, the packet and drop counters,
 *   the departure log;
 *   classification (a packet's flow), the wire length, the dequeue's gates (hold, the
 *   shaper) and the counting at enqueue and dequeue;
 *
 *   the packets: skb kptrs in the `slots` array map, one per slot, a free stack of slots,
 *   storing an arriving skb and taking one out to send it, freeing them all.
 *
 * Each object defines its per-flow array `ch` (with sent_packets, sent_bytes, drops), its
 * queues, its programs but init (here) and its struct_ops variable `xnf_pifo`.
 * The heap of the exact PIFO is xnf_heap.h; the PIFO framework is xnf_qdisc.h.
 */
#ifndef XNF_QDISC_BASE_H
#define XNF_QDISC_BASE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define XNF_MAX_FLOWS 64              /* flows a packet is classified into (bpf_qdisc.MAX_FLOWS) */
#define XNF_MAX_PKTS 4096             /* packets held at most (slots; bpf_qdisc.MAX_PACKETS) */
#define XNF_NONE 0xffffffffu
#define XNF_LOG_SIZE 4096             /* departures logged (bpf_qdisc.LOG_SIZE) */

#define XNF_FLOW_BY_MARK 0            /* bpf_qdisc.FLOWS_BY */
#define XNF_FLOW_BY_PRIORITY 1
#define XNF_FLOW_BY_PORT 2

#define NET_XMIT_SUCCESS 0x00
#define NET_XMIT_DROP 0x01

/* Kernel types: local, partial and preserve_access_index; CO-RE finds the offsets. */
struct sk_buff {
	unsigned int len;
	__u32 priority;
	__u32 mark;
	__u64 tstamp;
	char cb[48];
} __attribute__((preserve_access_index));

struct qdisc_skb_head {
	__u32 qlen;
} __attribute__((preserve_access_index));

struct gnet_stats_queue {
	__u32 qlen;
	__u32 backlog;
	__u32 drops;
	__u32 requeues;
	__u32 overlimits;
} __attribute__((preserve_access_index));

struct Qdisc {
	unsigned int limit;
	struct qdisc_skb_head q;
	struct gnet_stats_queue qstats;
} __attribute__((preserve_access_index));

struct bpf_sk_buff_ptr {  /* a struct, not a declaration: kfunc prototypes are compared by kind */
	struct sk_buff *skb;
};
struct nlattr;
struct netlink_ext_ack;

struct Qdisc_ops {
	int (*enqueue)(struct sk_buff *skb, struct Qdisc *sch, struct sk_buff **to_free);
	struct sk_buff *(*dequeue)(struct Qdisc *sch);
	int (*init)(struct Qdisc *sch, struct nlattr *arg, struct netlink_ext_ack *extack);
	void (*reset)(struct Qdisc *sch);
	void (*destroy)(struct Qdisc *sch);
	char id[16];
} __attribute__((preserve_access_index));

extern void bpf_qdisc_skb_drop(struct sk_buff *skb, struct bpf_sk_buff_ptr *to_free) __ksym;
extern void bpf_kfree_skb(struct sk_buff *skb) __ksym;
extern void bpf_qdisc_watchdog_schedule(struct Qdisc *sch, __u64 expire, __u64 delta_ns) __ksym;
extern void bpf_qdisc_bstats_update(struct Qdisc *sch, const struct sk_buff *skb) __ksym;
extern __u32 bpf_skb_get_hash(struct sk_buff *skb) __ksym;
extern int bpf_dynptr_from_skb(struct __sk_buff *s, __u64 flags, struct bpf_dynptr *ptr__uninit) __ksym;
extern void *bpf_dynptr_slice(const struct bpf_dynptr *p, __u64 offset, void *buffer__nullable,
			      __u64 buffer__szk) __ksym;

/* --- common configuration (.rodata: set in the spec before load) ------------------------ */
const volatile __u32 cfg_flow_by = XNF_FLOW_BY_MARK;  /* mark, priority or port */
const volatile __u32 cfg_default_flow = 0;    /* flow of packets whose key is out of range */
const volatile __u32 cfg_limit = 1000;        /* packets; sch->limit */
const volatile __u64 cfg_hold_poll_ns = 1000000;
/* the timer hook's shaper: a packet leaves no earlier than the previous one's end on a
 * link of the configured rate (0: unshaped); late wake-ups are made up within burst_ns */
const volatile __u64 cfg_ns_per_byte_q16 = 0;  /* 8e9 / rate in bit/s, << 16 */
const volatile __u64 cfg_burst_ns = 1000000;

/* flows by port (cfg_flow_by == XNF_FLOW_BY_PORT): TCP/UDP destination, else source port */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XNF_MAX_FLOWS);
	__type(key, __u16);
	__type(value, __u32);
} port_flows SEC(".maps");

/* --- common run-time state and counters (.bss) ------------------------------------------ */
__u32 hold;               /* 1: dequeue nothing (the watchdog polls until cleared) */
__u64 seq_in;             /* packets stored: the last arrival number */
__u32 fresh_slots, free_top;
__u32 free_stack[XNF_MAX_PKTS];
__u32 count;              /* packets queued */
__u64 enq_packets, enq_bytes, deq_packets, deq_bytes;
__u64 drops_overflow, errors;
__u64 next_tx_ns, shaped_waits;  /* the shaper: when the link is free again */
__u32 log_n;              /* dequeued packets' arrival numbers, the first XNF_LOG_SIZE */
__u64 deq_log[XNF_LOG_SIZE];

/* idx & mask, kept even where clang can prove idx is in range: the verifier may not see
 * the proof (a bound checked on another copy of the register), but it sees the mask */
static __always_inline __u32 xnf_bound(__u32 idx, __u32 mask)
{
	asm volatile("" : "+r"(idx));
	return idx & mask;
}

/* Log a departing packet's arrival number (the first XNF_LOG_SIZE). */
static __always_inline void xnf_log_departure(__u64 seq)
{
	if (log_n < XNF_LOG_SIZE)
		deq_log[log_n++ & (XNF_LOG_SIZE - 1)] = seq;
}

/* --- the packets ------------------------------------------------------------------------ */
/* One skb per slot (a map value may hold only a few kptrs, so they cannot sit in one array). */
struct xnf_slot {
	struct sk_buff __kptr *skb;
	__u32 len;        /* bytes on the wire */
	__u32 next;       /* next slot in the FIFO it is in (a flow's, a band's, a bucket's) */
	__u64 seq;        /* arrival number */
	__u32 flow;
	__u32 pad;
	__u64 value;      /* pifo_qdisc, flows mode: SRPT: skb->priority at enqueue (bytes left in
			   * the flow); LSTF: the deadline. SP-PIFO: the rank. FQ-CoDel: the
			   * time of enqueue (ns), for the sojourn time */
	__u32 dq_next;    /* LSTF: the flow's closest deadlines, a deque of slots (see */
	__u32 dq_prev;    /* xnf_lstf_joined) */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XNF_MAX_PKTS);
	__type(key, __u32);
	__uint(value_size, sizeof(struct xnf_slot));  /* value type: see below */
} slots SEC(".maps");

/* clang 14 writes a btf_type_tag into BTF only for a pointer it first meets as a
 * function's parameter; met first in a map definition, `__kptr` is lost and the kernel
 * would not know the slot holds an skb. So the map above names only its value size,
 * these two functions (never called, never loaded) bring the tagged pointer and then the
 * slot into BTF, and the loader (bpf_qdisc.py) gives the map `struct xnf_slot` as its
 * value type. The same object comes out of clang 15 and later. */
__attribute__((noinline)) __hidden int xnf_btf_kptr_tag(struct sk_buff __kptr *skb)
{
	return 0;
}

__attribute__((noinline)) __hidden int xnf_btf_slot(struct xnf_slot *slot)
{
	return 0;
}

static __always_inline struct xnf_slot *xnf_slot(__u32 idx)
{
	return bpf_map_lookup_elem(&slots, &idx);
}

/* A free slot index (reused first, then never used), or XNF_NONE. */
static __always_inline __u32 xnf_slot_alloc(void)
{
	if (free_top)
		return free_stack[--free_top & (XNF_MAX_PKTS - 1)];
	if (fresh_slots < XNF_MAX_PKTS)
		return fresh_slots++;
	return XNF_NONE;
}

static __always_inline void xnf_slot_free(__u32 idx)
{
	if (free_top < XNF_MAX_PKTS)
		free_stack[free_top++ & (XNF_MAX_PKTS - 1)] = idx;
}

/* Store the arriving skb (len bytes on the wire, of flow, with the object's value) in a
 * free slot as arrival number seq_in + 1, at the end of no FIFO yet: the slot, its index
 * in *idx; NULL when no slot is free (skb is still the caller's). */
static __always_inline struct xnf_slot *xnf_slot_store(struct sk_buff *skb, struct bpf_sk_buff_ptr *to_free,
							__u32 len, __u32 flow, __u64 value, __u32 *idx)
{
	struct xnf_slot *s;

	*idx = xnf_slot_alloc();
	s = xnf_slot(*idx);
	if (!s)
		return NULL;
	seq_in++;
	s->len = len;
	s->seq = seq_in;
	s->next = XNF_NONE;
	s->flow = flow;
	s->value = value;
	skb = bpf_kptr_xchg(&s->skb, skb);
	if (skb)  /* the slot was not free: cannot happen */
		bpf_qdisc_skb_drop(skb, to_free);
	return s;
}

/* Take slot idx's skb out to send it: its wire length charged at enqueue into *len, its
 * flow into *flow; the departure is logged and the slot freed. NULL (an error) if the
 * slot holds no skb. */
static __always_inline struct sk_buff *xnf_slot_take(__u32 idx, __u32 *len, __u32 *flow)
{
	struct xnf_slot *s = xnf_slot(idx);
	struct sk_buff *skb;

	if (!s) {
		errors++;
		return NULL;
	}
	skb = bpf_kptr_xchg(&s->skb, NULL);
	xnf_log_departure(s->seq);
	*len = s->len;
	*flow = s->flow;
	xnf_slot_free(idx);
	if (!skb)
		errors++;
	return skb;
}

/* --- classification --------------------------------------------------------------------- */
static __always_inline __u32 xnf_port_flow(struct sk_buff *skb)
{
	__u32 fallback = cfg_default_flow & (XNF_MAX_FLOWS - 1), l4 = ETH_HLEN, *flow;
	struct bpf_dynptr ptr;
	__u8 buf[40] = {}, proto;
	struct ethhdr *eth;
	__be16 *ports;
	__u16 port;

	if (bpf_dynptr_from_skb((struct __sk_buff *)skb, 0, &ptr))
		return fallback;
	eth = bpf_dynptr_slice(&ptr, 0, buf, sizeof(*eth));
	if (!eth)
		return fallback;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = bpf_dynptr_slice(&ptr, ETH_HLEN, buf, sizeof(*ip));

		if (!ip || (ip->frag_off & bpf_htons(0x1fff)))
			return fallback;
		proto = ip->protocol;
		l4 += ip->ihl * 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = bpf_dynptr_slice(&ptr, ETH_HLEN, buf, sizeof(*ip6));

		if (!ip6)
			return fallback;
		proto = ip6->nexthdr;
		l4 += sizeof(*ip6);
	} else {
		return fallback;
	}
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return fallback;
	ports = bpf_dynptr_slice(&ptr, l4, buf, 4);
	if (!ports)
		return fallback;
	port = bpf_ntohs(ports[1]);
	flow = bpf_map_lookup_elem(&port_flows, &port);
	if (!flow) {
		port = bpf_ntohs(ports[0]);
		flow = bpf_map_lookup_elem(&port_flows, &port);
	}
	return flow ? *flow & (XNF_MAX_FLOWS - 1) : fallback;
}

/* The packet's flow, 0..XNF_MAX_FLOWS-1: skb->mark, skb->priority or the port map. */
static __always_inline __u32 xnf_classify(struct sk_buff *skb)
{
	__u32 key;

	if (cfg_flow_by == XNF_FLOW_BY_PORT)
		return xnf_port_flow(skb);
	key = cfg_flow_by == XNF_FLOW_BY_PRIORITY ? skb->priority : skb->mark;
	return key < XNF_MAX_FLOWS ? key : cfg_default_flow & (XNF_MAX_FLOWS - 1);
}

/* The bytes the packet puts on the wire: qdisc_skb_cb(skb)->pkt_len, at the start of
 * skb->cb, set by the stack before enqueue (qdisc_pkt_len_segs_init) and what the
 * kernel's own qdiscs charge. TCP hands the qdisc GSO packets even with GSO off on the
 * device (they are segmented after dequeue); skb->len counts their headers once, the wire
 * once per segment (66 B of 1514 with TCP timestamps: the shaper sent 4 % over its rate). */
static __always_inline __u32 xnf_wire_len(struct sk_buff *skb)
{
	__u32 len = 0;

	if (bpf_probe_read_kernel(&len, sizeof(len), &skb->cb) || len < skb->len)
		return skb->len;
	return len;
}

/* --- enqueue and dequeue: the common steps ---------------------------------------------- */
/* Drop the arriving skb (the caller counts why and for which flow). */
static __always_inline int xnf_drop_skb(struct sk_buff *skb, struct Qdisc *sch, struct bpf_sk_buff_ptr *to_free)
{
	sch->qstats.drops++;
	bpf_qdisc_skb_drop(skb, to_free);
	return NET_XMIT_DROP;
}

/* A packet of `len` wire bytes is queued. */
static __always_inline int xnf_queued(struct Qdisc *sch, __u32 len)
{
	count++;
	enq_packets++;
	enq_bytes += len;
	sch->q.qlen++;
	sch->qstats.backlog += len;
	return NET_XMIT_SUCCESS;
}

/* The timer hook's hold: 1 (dequeue nothing) while `hold` is set, the watchdog polling. */
static __always_inline int xnf_held(struct Qdisc *sch)
{
	if (!hold)
		return 0;
	bpf_qdisc_watchdog_schedule(sch, bpf_ktime_get_ns() + cfg_hold_poll_ns, cfg_hold_poll_ns / 4);
	return 1;
}

/* The timer hook's shaper: 1 (dequeue nothing) while the link is busy at `now`, the
 * watchdog waking when it is free. */
static __always_inline int xnf_shaped(struct Qdisc *sch, __u64 now)
{
	if (!cfg_ns_per_byte_q16 || now >= next_tx_ns)
		return 0;
	shaped_waits++;
	bpf_qdisc_watchdog_schedule(sch, next_tx_ns, 0);
	return 1;
}

/* skb of `len` wire bytes leaves at `now` (read when shaping): the shaper's next free
 * time, the counters, sch's. Returns skb. */
static __always_inline struct sk_buff *xnf_sent(struct Qdisc *sch, struct sk_buff *skb, __u32 len, __u64 now)
{
	if (cfg_ns_per_byte_q16) {
		__u64 base = next_tx_ns + cfg_burst_ns < now ? now - cfg_burst_ns : next_tx_ns;

		next_tx_ns = base + (((__u64)len * cfg_ns_per_byte_q16) >> 16);
	}
	deq_packets++;
	deq_bytes += len;
	sch->q.qlen--;
	sch->qstats.backlog -= len;
	bpf_qdisc_bstats_update(sch, skb);
	return skb;
}

/* Free every queued skb (reset, destroy): the queue is empty, the counters stay. */
static __always_inline void xnf_flush(struct Qdisc *sch)
{
	struct sk_buff *skb;
	struct xnf_slot *s;

	for (__u32 i = 0; i < XNF_MAX_PKTS; i++) {
		s = xnf_slot(i);
		if (!s)
			break;
		skb = bpf_kptr_xchg(&s->skb, NULL);
		if (skb)
			bpf_kfree_skb(skb);
	}
	count = 0;
	fresh_slots = 0;
	free_top = 0;
	next_tx_ns = 0;
	sch->q.qlen = 0;
	sch->qstats.backlog = 0;
}

SEC("struct_ops/xnf_qdisc_init")
int BPF_PROG(xnf_qdisc_init, struct Qdisc *sch, struct nlattr *opt, struct netlink_ext_ack *extack)
{
	sch->limit = cfg_limit < XNF_MAX_PKTS ? cfg_limit : XNF_MAX_PKTS;
	return 0;
}

char _license[] SEC("license") = "GPL";

#endif
