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
 * What it shares with pifo_qdisc is xnf_qdisc_base.h: kernel types, kfuncs, the common
 * configuration, state and counters (under the names the loader, `xnf status` and the
 * tests read for both, bpf_qdisc.py), the packets' slots, classification, the wire
 * length, hold and the shaper. ECN marking is not here: a struct_ops program's skb dynptr
 * is read-only, so the packet cannot be written.
 */
#include "xnf_qdisc_base.h"

#define FQ_MAX_BUCKETS 1024     /* the simulator's `flows`, at most */
#define FQ_BUCKET_MASK (FQ_MAX_BUCKETS - 1)
#define FQ_STEPS 512            /* DRR turns per dequeue call; more go on from the watchdog */
#define FQ_MAX_DROPS 64         /* CoDel drops per dequeue call (a control law caught up) */
#define FQ_AGAIN 0xfffffffeu    /* fq_step: no packet yet, turn again */
#define FQ_OK_TO_DROP 0x10000   /* fq_codel_pop: the slot, and that CoDel may drop it */
#define FQ_SLOT_OF(r) ((r) & 0xffff)

/* --- configuration (.rodata: set in the spec before load) ------------------------------ */
/* and xnf_qdisc_base.h's: cfg_limit is the simulator's capacity */
const volatile __u32 cfg_buckets = 1024;       /* fq_codel.py's `flows` */
const volatile __u32 cfg_hash = 0;             /* bucket from the skb's flow hash, not the flow's */
const volatile __u32 cfg_bucket_of[XNF_MAX_FLOWS] = {};  /* flow -> bucket, as the simulator hashes */
const volatile __s64 cfg_quantum = 1514;
const volatile __u64 cfg_target_ns = 5000000;
const volatile __u64 cfg_interval_ns = 100000000;
const volatile __u64 cfg_interval_sq = 10000000000000000ULL;  /* interval_ns squared */
const volatile __u32 cfg_mtu = 1514;

/* The packets are xnf_qdisc_base.h's slots, a slot's `value` the time of its enqueue (ns). */

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

struct fq_flow ch[XNF_MAX_FLOWS] = {};

/* --- run-time state and counters (.bss) ------------------------------------------------- */
/* besides xnf_qdisc_base.h's */
__u64 drops_codel, more_turns;
__u32 dropped_now, dropped_now_bytes;  /* CoDel drops of this dequeue call, for sch's counters */

static __always_inline struct fq_bucket *fq_b(__u32 b)
{
	return &buckets[xnf_bound(b, FQ_BUCKET_MASK)];
}

static __always_inline struct fq_flow *fq_f(__u32 f)
{
	return &ch[xnf_bound(f, XNF_MAX_FLOWS - 1)];
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

/* FqCodel._pop: the head slot of bucket b out of every count (XNF_NONE if empty). */
static __always_inline __u32 fq_take(__u32 b)
{
	struct fq_bucket *q = fq_b(b);
	struct xnf_slot *s;
	__u32 slot;

	if (!q->packets)
		return XNF_NONE;
	slot = q->head;
	s = xnf_slot(slot);
	if (!s) {
		errors++;
		return XNF_NONE;
	}
	q->head = s->next;
	q->packets--;
	q->bytes -= s->len;
	fq_f(s->flow)->count--;
	count--;
	return slot;
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
 * (with more than an MTU left behind it) for an interval; XNF_NONE if b is empty. */
__attribute__((noinline)) __u32 fq_codel_pop(__u32 b, __u64 now)
{
	struct fq_bucket *q = fq_b(b);
	struct xnf_slot *s;
	__u32 slot = fq_take(b);

	if (slot == XNF_NONE) {
		q->first_above = 0;
		return XNF_NONE;
	}
	s = xnf_slot(slot);
	if (!s)
		return XNF_NONE;
	if (now - s->value < cfg_target_ns || q->bytes <= cfg_mtu) {
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
	struct xnf_slot *s = xnf_slot(slot);
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
	xnf_slot_free(slot);
}

/* FqCodel._codel_dequeue (never marking: no ECN here); at most FQ_MAX_DROPS drops in one
 * call, the rest of a control law that fell behind waits for the next dequeue. */
static __always_inline __u32 fq_codel_dequeue(__u32 b, __u64 now)
{
	struct fq_bucket *q = fq_b(b);
	__u32 r = fq_codel_pop(b, now);
	__s64 delta;

	if (r == XNF_NONE) {
		q->dropping = 0;
		return XNF_NONE;
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
			if (r == XNF_NONE) {
				q->dropping = 0;
				return XNF_NONE;
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
	return r == XNF_NONE ? XNF_NONE : FQ_SLOT_OF(r);
}

/* One turn of FqCodel.dequeue's loop: the slot to send, FQ_AGAIN, or XNF_NONE (nothing left). */
__attribute__((noinline)) __u32 fq_step(__u64 now)
{
	int from_new = new_flows.n != 0;
	struct fq_list *l = from_new ? &new_flows : &old_flows;
	struct fq_bucket *q;
	struct xnf_slot *s;
	__u32 b, slot;

	if (!l->n)
		return XNF_NONE;
	b = l->head;
	q = fq_b(b);
	if (q->deficit <= 0) {
		q->deficit += cfg_quantum;
		fq_list_pop(l);
		fq_list_push(&old_flows, b);
		return FQ_AGAIN;
	}
	slot = fq_codel_dequeue(b, now);
	if (slot == XNF_NONE) {
		fq_list_pop(l);
		if (from_new)
			fq_list_push(&old_flows, b);
		else
			q->listed = 0;
		return FQ_AGAIN;
	}
	s = xnf_slot(slot);
	if (!s)
		return XNF_NONE;
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
	return xnf_drop_skb(skb, sch, to_free);
}

SEC("struct_ops/fq_qdisc_enqueue")
int BPF_PROG(fq_qdisc_enqueue, struct sk_buff *skb, struct Qdisc *sch, struct bpf_sk_buff_ptr *to_free)
{
	__u32 flow = xnf_classify(skb), len = xnf_wire_len(skb), b, idx;
	struct sk_buff *old;
	struct fq_bucket *q;
	struct xnf_slot *s;

	b = cfg_hash ? bpf_skb_get_hash(skb) % cfg_buckets : cfg_bucket_of[flow & (XNF_MAX_FLOWS - 1)];
	q = fq_b(b);
	if (!q->listed) {  /* listed even if the packet is the one dropped below, as in the simulator */
		q->listed = 1;
		q->deficit = cfg_quantum;
		fq_list_push(&new_flows, b);
	}
	if (count >= sch->limit || count >= XNF_MAX_PKTS) {  /* drop at the head of the fattest flow */
		__u32 fat, victim;

		q->bytes += len;  /* the simulator counts the arriving packet in its queue */
		fat = fq_fattest();
		q->bytes -= len;
		if (fat == b && !q->packets)  /* the arriving packet would be that head */
			return fq_drop_arriving(skb, sch, to_free, flow);
		victim = fq_take(fat);
		s = xnf_slot(victim);
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
		xnf_slot_free(victim);
	}
	s = xnf_slot_store(skb, to_free, len, flow, bpf_ktime_get_ns(), &idx);
	if (!s)
		return fq_drop_arriving(skb, sch, to_free, flow);
	if (q->packets) {
		s = xnf_slot(q->tail);
		if (s)
			s->next = idx;
	} else {
		q->head = idx;
	}
	q->tail = idx;
	q->packets++;
	q->bytes += len;
	fq_f(flow)->count++;
	return xnf_queued(sch, len);
}

SEC("struct_ops/fq_qdisc_dequeue")
struct sk_buff *BPF_PROG(fq_qdisc_dequeue, struct Qdisc *sch)
{
	__u32 slot = FQ_AGAIN, len, flow;
	struct sk_buff *skb;
	__u64 now;

	/* with no packet but buckets still listed, the loop below empties the lists, as the
	 * simulator's dequeue does when it finds nothing: a flow that comes back is new */
	if (!count && !new_flows.n && !old_flows.n)
		return NULL;
	if (count && xnf_held(sch))
		return NULL;
	now = bpf_ktime_get_ns();
	if (count && xnf_shaped(sch, now))
		return NULL;
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
	if (slot == XNF_NONE) {
		if (count)  /* packets queued but in no list: cannot happen */
			errors++;
		return NULL;
	}
	skb = xnf_slot_take(slot, &len, &flow);
	if (!skb)
		return NULL;
	fq_f(flow)->sent_packets++;
	fq_f(flow)->sent_bytes += len;
	return xnf_sent(sch, skb, len, now);
}

/* Free every queued packet; the buckets and lists start over (the counters stay). */
static __always_inline void fq_reset_all(struct Qdisc *sch)
{
	xnf_flush(sch);
	for (__u32 i = 0; i < FQ_MAX_BUCKETS; i++) {
		struct fq_bucket *q = fq_b(i);

		q->listed = q->packets = q->bytes = 0;
		q->deficit = 0;
		q->first_above = q->drop_next = 0;
		q->dropping = q->count = q->last_count = 0;
	}
	for (__u32 i = 0; i < XNF_MAX_FLOWS; i++)
		fq_f(i)->count = 0;
	new_flows.n = old_flows.n = 0;
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

/* The struct_ops variable, under the name the loader looks for (bpf_qdisc.OPS); user space
 * sets `.id` (the qdisc kind) per instance. */
SEC(".struct_ops.link")
struct Qdisc_ops xnf_pifo = {
	.enqueue = (void *)fq_qdisc_enqueue,
	.dequeue = (void *)fq_qdisc_dequeue,
	.init = (void *)xnf_qdisc_init,
	.reset = (void *)fq_qdisc_reset,
	.destroy = (void *)fq_qdisc_destroy,
	.id = "xnf_fq_codel",
};
