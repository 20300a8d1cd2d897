// SPDX-License-Identifier: GPL-2.0
/* pifo_sched's FQ-CoDel as a BPF qdisc (struct_ops Qdisc_ops, Linux 6.16+ with NET_SCH_BPF).
 *
 * The simulator's FqCodel (algorithms/fq_codel.py) step for step, so its options mean the
 * same (qdisc/fq_codel.py fills the configuration):
 *   enqueue  the packet's bucket (the flow's, as the simulator hashes it, or the kernel's
 *            flow hash of the packet with cfg_hash), appended to the bucket's FIFO; a
 *            bucket not listed goes to the tail of the new list with a quantum of credit;
 *            over the limit the head of the fattest bucket (most bytes, the first of
 *            equals) is dropped;
 *   dequeue  DRR over the new list, then the old list: a bucket out of credit gets a
 *            quantum more and goes to the old list's tail; otherwise CoDel pops its head
 *            (sojourn above target for an interval: drop, then drop again at
 *            interval / sqrt(count) steps while it stays above); an empty bucket leaves
 *            the new list for the old one, or the old list altogether;
 *   timer    the qdisc watchdog: the `hold` switch, the rate shaper, and going on when a
 *            dequeue needs more than FQ_STEPS turns of the DRR loop.
 * The state and counters keep the names of pifo_qdisc's (xnf_qdisc.h), so the loader,
 * `xnf status` and the tests read both alike (bpf_qdisc.py). ECN marking is not here: a
 * struct_ops program's skb dynptr is read-only, so the packet cannot be written.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define FQ_MAX_PKTS 4096        /* packets held at most (slots) */
#define FQ_PKT_MASK (FQ_MAX_PKTS - 1)
#define FQ_MAX_FLOWS 64         /* flows of the per-flow figures (XNF_MAX_FLOWS) */
#define FQ_MAX_BUCKETS 1024     /* the simulator's `flows`, at most */
#define FQ_BUCKET_MASK (FQ_MAX_BUCKETS - 1)
#define FQ_LOG_SIZE 4096
#define FQ_STEPS 512            /* DRR turns per dequeue call; more go on from the watchdog */
#define FQ_MAX_DROPS 64         /* CoDel drops per dequeue call (a control law caught up) */
#define FQ_NONE 0xffffffffu
#define FQ_AGAIN 0xfffffffeu    /* fq_step: no packet yet, turn again */
#define FQ_OK_TO_DROP 0x10000   /* fq_codel_pop: the slot, and that CoDel may drop it */
#define FQ_SLOT_OF(r) ((r) & 0xffff)

#define FLOW_BY_PRIORITY 1
#define FLOW_BY_PORT 2

#define NET_XMIT_SUCCESS 0x00
#define NET_XMIT_DROP 0x01

/* Kernel types: local, partial and preserve_access_index; CO-RE finds the offsets. */
struct sk_buff {
	unsigned int len;
	__u32 priority;
	__u32 mark;
	char cb[48];
} __attribute__((preserve_access_index));

struct qdisc_skb_head {
	__u32 qlen;
} __attribute__((preserve_access_index));

struct gnet_stats_queue {
	__u32 qlen;
	__u32 backlog;
	__u32 drops;
} __attribute__((preserve_access_index));

struct Qdisc {
	unsigned int limit;
	struct qdisc_skb_head q;
	struct gnet_stats_queue qstats;
} __attribute__((preserve_access_index));

struct bpf_sk_buff_ptr {
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

/* --- configuration (.rodata: set in the spec before load) ------------------------------ */
const volatile __u32 cfg_flow_by = 0;          /* mark, priority or port (bpf_qdisc.FLOWS_BY) */
const volatile __u32 cfg_default_flow = 0;     /* flow of packets whose key is out of range */
const volatile __u32 cfg_limit = 1000;         /* packets; sch->limit (the simulator's capacity) */
const volatile __u64 cfg_hold_poll_ns = 1000000;
const volatile __u64 cfg_ns_per_byte_q16 = 0;  /* the shaper: 8e9 / rate in bit/s, << 16 (0: none) */
const volatile __u64 cfg_burst_ns = 1000000;   /* late wake-ups made up within this */
const volatile __u32 cfg_buckets = 1024;       /* fq_codel.py's `flows` */
const volatile __u32 cfg_hash = 0;             /* bucket from the skb's flow hash, not the flow's */
const volatile __u32 cfg_bucket_of[FQ_MAX_FLOWS] = {};  /* flow -> bucket, as the simulator hashes */
const volatile __s64 cfg_quantum = 1514;
const volatile __u64 cfg_target_ns = 5000000;
const volatile __u64 cfg_interval_ns = 100000000;
const volatile __u64 cfg_interval_sq = 10000000000000000ULL;  /* interval_ns squared */
const volatile __u32 cfg_mtu = 1514;

/* flows by port (cfg_flow_by == FLOW_BY_PORT): TCP/UDP destination, else source port */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FQ_MAX_FLOWS);
	__type(key, __u16);
	__type(value, __u32);
} port_flows SEC(".maps");

/* --- the packets ------------------------------------------------------------------------ */
struct xnf_slot {
	struct sk_buff __kptr *skb;
	__u32 len;        /* bytes on the wire */
	__u32 next;       /* next slot in the bucket's FIFO */
	__u64 seq;        /* arrival number */
	__u64 enqueued;   /* bpf_ktime_get_ns() at enqueue: CoDel's sojourn time */
	__u32 flow;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FQ_MAX_PKTS);
	__type(key, __u32);
	__uint(value_size, sizeof(struct xnf_slot));  /* value type: struct xnf_slot, see below */
} slots SEC(".maps");

/* clang 14 keeps `__kptr` in BTF only for a pointer first met as a function parameter (see
 * xnf_qdisc.h): these two, never called, bring the tagged pointer and then the slot into
 * BTF; the loader gives the map `struct xnf_slot` as its value type. */
__attribute__((noinline)) __hidden int xnf_btf_kptr_tag(struct sk_buff __kptr *skb)
{
	return 0;
}

__attribute__((noinline)) __hidden int xnf_btf_slot(struct xnf_slot *slot)
{
	return 0;
}

/* --- the buckets (the simulator's _FlowState) and their lists --------------------------- */
struct fq_bucket {
	__u32 head, tail;     /* its FIFO of slots */
	__u32 next;           /* the next bucket of the list it is in */
	__u32 listed;         /* in the new or the old list */
	__u32 packets;
	__u32 bytes;
	__s64 deficit;
	__u64 first_above;    /* CoDel: when the sojourn time may start dropping (0: below target) */
	__u64 drop_next;
	__u32 dropping;
	__u32 count;
	__u32 last_count;
	__u32 pad;
};

struct fq_list {
	__u32 head, tail, n;
};

struct fq_bucket buckets[FQ_MAX_BUCKETS] = {};
struct fq_list new_flows, old_flows;

/* per flow, under pifo_qdisc's names (bpf_qdisc._stats reads them) */
struct fq_flow {
	__u64 sent_packets;
	__u64 sent_bytes;
	__u64 drops;
	__u32 count;          /* packets queued */
	__u32 pad;
};

struct fq_flow ch[FQ_MAX_FLOWS] = {};

/* --- run-time state and counters (.bss) ------------------------------------------------- */
__u32 hold;               /* 1: dequeue nothing (the watchdog polls until cleared) */
__u64 seq_in;
__u32 fresh_slots, free_top;
__u32 free_stack[FQ_MAX_PKTS];
__u32 count;              /* packets queued */
__u64 enq_packets, enq_bytes, deq_packets, deq_bytes;
__u64 drops_overflow, drops_codel, errors;
__u64 next_tx_ns, shaped_waits, more_turns;
__u32 dropped_now, dropped_now_bytes;  /* CoDel drops of this dequeue call, for sch's counters */
__u32 log_n;              /* dequeued packets' arrival numbers, the first FQ_LOG_SIZE */
__u64 deq_log[FQ_LOG_SIZE];

/* idx & mask, kept where clang can prove idx in range: the verifier sees the mask */
static __always_inline __u32 fq_bound(__u32 idx, __u32 mask)
{
	asm volatile("" : "+r"(idx));
	return idx & mask;
}

static __always_inline struct fq_bucket *fq_b(__u32 b)
{
	return &buckets[fq_bound(b, FQ_BUCKET_MASK)];
}

static __always_inline struct fq_flow *fq_f(__u32 f)
{
	return &ch[fq_bound(f, FQ_MAX_FLOWS - 1)];
}

static __always_inline struct xnf_slot *fq_slot(__u32 idx)
{
	return bpf_map_lookup_elem(&slots, &idx);
}

static __always_inline __u32 fq_slot_alloc(void)
{
	if (free_top)
		return free_stack[--free_top & FQ_PKT_MASK];
	if (fresh_slots < FQ_MAX_PKTS)
		return fresh_slots++;
	return FQ_NONE;
}

static __always_inline void fq_slot_free(__u32 idx)
{
	if (free_top < FQ_MAX_PKTS)
		free_stack[free_top++ & FQ_PKT_MASK] = idx;
}

static __always_inline void fq_list_push(struct fq_list *l, __u32 b)
{
	if (l->n)
		fq_b(l->tail)->next = b;
	else
		l->head = b;
	l->tail = b;
	l->n++;
}

static __always_inline void fq_list_pop(struct fq_list *l)
{
	l->head = fq_b(l->head)->next;
	l->n--;
}

/* FqCodel._pop: the head slot of bucket b out of every count (FQ_NONE if empty). */
static __always_inline __u32 fq_take(__u32 b)
{
	struct fq_bucket *q = fq_b(b);
	struct xnf_slot *s;
	__u32 slot;

	if (!q->packets)
		return FQ_NONE;
	slot = q->head;
	s = fq_slot(slot);
	if (!s) {
		errors++;
		return FQ_NONE;
	}
	q->head = s->next;
	q->packets--;
	q->bytes -= s->len;
	fq_f(s->flow)->count--;
	count--;
	return slot;
}

/* --- classification (pifo_qdisc's: mark, priority or port) ------------------------------ */
static __always_inline __u32 fq_port_flow(struct sk_buff *skb)
{
	__u32 fallback = cfg_default_flow & (FQ_MAX_FLOWS - 1), l4 = ETH_HLEN, *flow;
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
	return flow ? *flow & (FQ_MAX_FLOWS - 1) : fallback;
}

static __always_inline __u32 fq_classify(struct sk_buff *skb)
{
	__u32 key;

	if (cfg_flow_by == FLOW_BY_PORT)
		return fq_port_flow(skb);
	key = cfg_flow_by == FLOW_BY_PRIORITY ? skb->priority : skb->mark;
	return key < FQ_MAX_FLOWS ? key : cfg_default_flow & (FQ_MAX_FLOWS - 1);
}

/* The bytes the packet puts on the wire: qdisc_skb_cb(skb)->pkt_len (a GSO packet's every
 * segment with its headers), as pifo_qdisc charges (xnf_qdisc.h, xnf_wire_len). */
static __always_inline __u32 fq_wire_len(struct sk_buff *skb)
{
	__u32 len = 0;

	if (bpf_probe_read_kernel(&len, sizeof(len), &skb->cb) || len < skb->len)
		return skb->len;
	return len;
}

/* --- CoDel (FqCodel._codel_pop, _control_law, _codel_dequeue) --------------------------- */

/* start + floor(interval / sqrt(count)), exactly: floor(sqrt(interval^2 / count)) by the
 * digit-by-digit integer square root (the simulator's float gives the same but for
 * rounding in its last place). Branch-free, so the verifier walks one path: with
 * interval < 2^31 ns (fq_codel.py checks) x and r + bit stay below 2^63, and the top bit
 * of x - (r + bit) says x < r + bit. */
__attribute__((noinline)) __u64 fq_control_law(__u64 start, __u32 count)
{
	__u64 x = cfg_interval_sq / (count ? count : 1), r = 0, bit = 1ULL << 62, t, ge;

	for (int i = 0; i < 32; i++) {
		t = r + bit;
		ge = ((x - t) >> 63) ^ 1;  /* x >= t */
		x -= t & -ge;
		r = (r >> 1) + (bit & -ge);
		bit >>= 2;
	}
	return start + r;
}

/* Pop bucket b's head: its slot, | FQ_OK_TO_DROP when its sojourn has been above target
 * (with more than an MTU left behind it) for an interval; FQ_NONE if b is empty. */
__attribute__((noinline)) __u32 fq_codel_pop(__u32 b, __u64 now)
{
	struct fq_bucket *q = fq_b(b);
	struct xnf_slot *s;
	__u32 slot = fq_take(b);

	if (slot == FQ_NONE) {
		q->first_above = 0;
		return FQ_NONE;
	}
	s = fq_slot(slot);
	if (!s)
		return FQ_NONE;
	if (now - s->enqueued < cfg_target_ns || q->bytes <= cfg_mtu) {
		q->first_above = 0;
		return slot;
	}
	if (!q->first_above) {
		q->first_above = now + cfg_interval_ns;
		return slot;
	}
	return now >= q->first_above ? slot | FQ_OK_TO_DROP : slot;
}

/* A packet CoDel drops (freed at once; sch's counters are settled by the dequeue). */
static __always_inline void fq_codel_drop(__u32 slot)
{
	struct xnf_slot *s = fq_slot(slot);
	struct sk_buff *skb;

	if (!s) {
		errors++;
		return;
	}
	skb = bpf_kptr_xchg(&s->skb, NULL);
	if (skb)
		bpf_kfree_skb(skb);
	else
		errors++;
	fq_f(s->flow)->drops++;
	drops_codel++;
	dropped_now++;
	dropped_now_bytes += s->len;
	fq_slot_free(slot);
}

/* FqCodel._codel_dequeue (never marking: no ECN here); at most FQ_MAX_DROPS drops in one
 * call, the rest of a control law that fell behind waits for the next dequeue. */
static __always_inline __u32 fq_codel_dequeue(__u32 b, __u64 now)
{
	struct fq_bucket *q = fq_b(b);
	__u32 r = fq_codel_pop(b, now);
	__s64 delta;

	if (r == FQ_NONE) {
		q->dropping = 0;
		return FQ_NONE;
	}
	if (q->dropping) {
		if (!(r & FQ_OK_TO_DROP))
			q->dropping = 0;
		for (int k = 0; k < FQ_MAX_DROPS; k++) {
			if (!q->dropping || now < q->drop_next)
				break;
			q->count++;
			fq_codel_drop(FQ_SLOT_OF(r));
			r = fq_codel_pop(b, now);
			if (r == FQ_NONE) {
				q->dropping = 0;
				return FQ_NONE;
			}
			if (r & FQ_OK_TO_DROP)
				q->drop_next = fq_control_law(q->drop_next, q->count);
			else
				q->dropping = 0;
		}
		return FQ_SLOT_OF(r);
	}
	if (!(r & FQ_OK_TO_DROP))
		return r;
	fq_codel_drop(FQ_SLOT_OF(r));
	r = fq_codel_pop(b, now);
	q->dropping = 1;
	delta = (__s64)q->count - (__s64)q->last_count;
	q->count = delta > 1 && (__s64)(now - q->drop_next) < (__s64)(16 * cfg_interval_ns) ? delta : 1;
	q->last_count = q->count;
	q->drop_next = fq_control_law(now, q->count);
	return r == FQ_NONE ? FQ_NONE : FQ_SLOT_OF(r);
}

/* One turn of FqCodel.dequeue's loop: the slot to send, FQ_AGAIN, or FQ_NONE (nothing left). */
__attribute__((noinline)) __u32 fq_step(__u64 now)
{
	int from_new = new_flows.n != 0;
	struct fq_list *l = from_new ? &new_flows : &old_flows;
	struct fq_bucket *q;
	struct xnf_slot *s;
	__u32 b, slot;

	if (!l->n)
		return FQ_NONE;
	b = l->head;
	q = fq_b(b);
	if (q->deficit <= 0) {
		q->deficit += cfg_quantum;
		fq_list_pop(l);
		fq_list_push(&old_flows, b);
		return FQ_AGAIN;
	}
	slot = fq_codel_dequeue(b, now);
	if (slot == FQ_NONE) {
		fq_list_pop(l);
		if (from_new)
			fq_list_push(&old_flows, b);
		else
			q->listed = 0;
		return FQ_AGAIN;
	}
	s = fq_slot(slot);
	if (!s)
		return FQ_NONE;
	q->deficit -= s->len;
	return slot;
}

/* The first bucket with the most bytes (FqCodel.enqueue's max() over every queue). */
__attribute__((noinline)) __u32 fq_fattest(void)
{
	__u64 most = 0, bytes;
	__u32 best = 0;

	for (__u32 i = 0; i < FQ_MAX_BUCKETS; i++) {
		if (i >= cfg_buckets)
			break;
		bytes = fq_b(i)->bytes;
		if (!i || bytes > most) {
			most = bytes;
			best = i;
		}
	}
	return best;
}

/* --- the struct_ops programs ------------------------------------------------------------ */
static __always_inline int fq_drop_arriving(struct sk_buff *skb, struct Qdisc *sch,
					    struct bpf_sk_buff_ptr *to_free, __u32 flow)
{
	drops_overflow++;
	fq_f(flow)->drops++;
	sch->qstats.drops++;
	bpf_qdisc_skb_drop(skb, to_free);
	return NET_XMIT_DROP;
}

SEC("struct_ops/fq_qdisc_enqueue")
int BPF_PROG(fq_qdisc_enqueue, struct sk_buff *skb, struct Qdisc *sch, struct bpf_sk_buff_ptr *to_free)
{
	__u32 flow = fq_classify(skb), len = fq_wire_len(skb), b, idx;
	struct sk_buff *old;
	struct fq_bucket *q;
	struct xnf_slot *s;

	b = cfg_hash ? bpf_skb_get_hash(skb) % cfg_buckets : cfg_bucket_of[flow & (FQ_MAX_FLOWS - 1)];
	q = fq_b(b);
	if (!q->listed) {  /* listed even if the packet is the one dropped below, as in the simulator */
		q->listed = 1;
		q->deficit = cfg_quantum;
		fq_list_push(&new_flows, b);
	}
	if (count >= sch->limit || count >= FQ_MAX_PKTS) {  /* drop at the head of the fattest flow */
		__u32 fat, victim;

		q->bytes += len;  /* the simulator counts the arriving packet in its queue */
		fat = fq_fattest();
		q->bytes -= len;
		if (fat == b && !q->packets)  /* the arriving packet would be that head */
			return fq_drop_arriving(skb, sch, to_free, flow);
		victim = fq_take(fat);
		s = fq_slot(victim);
		if (!s)
			return fq_drop_arriving(skb, sch, to_free, flow);
		old = bpf_kptr_xchg(&s->skb, NULL);
		if (old)
			bpf_qdisc_skb_drop(old, to_free);
		drops_overflow++;
		fq_f(s->flow)->drops++;
		sch->qstats.drops++;
		sch->q.qlen--;
		sch->qstats.backlog -= s->len;
		fq_slot_free(victim);
	}
	idx = fq_slot_alloc();
	s = fq_slot(idx);
	if (!s)
		return fq_drop_arriving(skb, sch, to_free, flow);
	seq_in++;
	s->len = len;
	s->next = FQ_NONE;
	s->seq = seq_in;
	s->enqueued = bpf_ktime_get_ns();
	s->flow = flow;
	old = bpf_kptr_xchg(&s->skb, skb);
	if (old)  /* the slot was not free: cannot happen */
		bpf_qdisc_skb_drop(old, to_free);
	if (q->packets) {
		s = fq_slot(q->tail);
		if (s)
			s->next = idx;
	} else {
		q->head = idx;
	}
	q->tail = idx;
	q->packets++;
	q->bytes += len;
	fq_f(flow)->count++;
	count++;
	enq_packets++;
	enq_bytes += len;
	sch->q.qlen++;
	sch->qstats.backlog += len;
	return NET_XMIT_SUCCESS;
}

SEC("struct_ops/fq_qdisc_dequeue")
struct sk_buff *BPF_PROG(fq_qdisc_dequeue, struct Qdisc *sch)
{
	__u32 slot = FQ_AGAIN, len, flow;
	struct sk_buff *skb;
	struct xnf_slot *s;
	__u64 now;

	/* with no packet but buckets still listed, the loop below empties the lists, as the
	 * simulator's dequeue does when it finds nothing: a flow that comes back is new */
	if (!count && !new_flows.n && !old_flows.n)
		return NULL;
	if (hold && count) {
		bpf_qdisc_watchdog_schedule(sch, bpf_ktime_get_ns() + cfg_hold_poll_ns, cfg_hold_poll_ns / 4);
		return NULL;
	}
	now = bpf_ktime_get_ns();
	if (cfg_ns_per_byte_q16 && count && now < next_tx_ns) {  /* the link is busy: wake when it is free */
		shaped_waits++;
		bpf_qdisc_watchdog_schedule(sch, next_tx_ns, 0);
		return NULL;
	}
	dropped_now = dropped_now_bytes = 0;
	for (int i = 0; i < FQ_STEPS; i++) {
		slot = fq_step(now);
		if (slot != FQ_AGAIN)
			break;
	}
	sch->qstats.drops += dropped_now;
	sch->q.qlen -= dropped_now;
	sch->qstats.backlog -= dropped_now_bytes;
	if (slot == FQ_AGAIN) {  /* a long DRR round (small quantum, big packets): go on at once */
		more_turns++;
		bpf_qdisc_watchdog_schedule(sch, now, 0);
		return NULL;
	}
	if (slot == FQ_NONE) {
		if (count)  /* packets queued but in no list: cannot happen */
			errors++;
		return NULL;
	}
	s = fq_slot(slot);
	if (!s) {
		errors++;
		return NULL;
	}
	skb = bpf_kptr_xchg(&s->skb, NULL);
	if (log_n < FQ_LOG_SIZE)
		deq_log[log_n++ & (FQ_LOG_SIZE - 1)] = s->seq;
	len = s->len;
	flow = s->flow;
	fq_slot_free(slot);
	if (!skb) {
		errors++;
		return NULL;
	}
	fq_f(flow)->sent_packets++;
	fq_f(flow)->sent_bytes += len;
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

SEC("struct_ops/fq_qdisc_init")
int BPF_PROG(fq_qdisc_init, struct Qdisc *sch, struct nlattr *opt, struct netlink_ext_ack *extack)
{
	sch->limit = cfg_limit < FQ_MAX_PKTS ? cfg_limit : FQ_MAX_PKTS;
	return 0;
}

/* Free every queued packet; the buckets and lists start over (the counters stay). */
static __always_inline void fq_reset_all(struct Qdisc *sch)
{
	struct sk_buff *skb;
	struct xnf_slot *s;

	for (__u32 i = 0; i < FQ_MAX_PKTS; i++) {
		s = fq_slot(i);
		if (!s)
			break;
		skb = bpf_kptr_xchg(&s->skb, NULL);
		if (skb)
			bpf_kfree_skb(skb);
	}
	for (__u32 i = 0; i < FQ_MAX_BUCKETS; i++) {
		struct fq_bucket *q = fq_b(i);

		q->listed = q->packets = q->bytes = 0;
		q->deficit = 0;
		q->first_above = q->drop_next = 0;
		q->dropping = q->count = q->last_count = 0;
	}
	for (__u32 i = 0; i < FQ_MAX_FLOWS; i++)
		fq_f(i)->count = 0;
	new_flows.n = old_flows.n = 0;
	count = 0;
	fresh_slots = 0;
	free_top = 0;
	next_tx_ns = 0;
	sch->q.qlen = 0;
	sch->qstats.backlog = 0;
}

SEC("struct_ops/fq_qdisc_reset")
void BPF_PROG(fq_qdisc_reset, struct Qdisc *sch)
{
	fq_reset_all(sch);
}

SEC("struct_ops/fq_qdisc_destroy")
void BPF_PROG(fq_qdisc_destroy, struct Qdisc *sch)
{
	fq_reset_all(sch);
}

char _license[] SEC("license") = "GPL";

/* The struct_ops variable, under the name the loader looks for (bpf_qdisc.OPS); user space
 * sets `.id` (the qdisc kind) per instance. */
SEC(".struct_ops.link")
struct Qdisc_ops xnf_pifo = {
	.enqueue = (void *)fq_qdisc_enqueue,
	.dequeue = (void *)fq_qdisc_dequeue,
	.init = (void *)fq_qdisc_init,
	.reset = (void *)fq_qdisc_reset,
	.destroy = (void *)fq_qdisc_destroy,
	.id = "xnf_fq_codel",
};
