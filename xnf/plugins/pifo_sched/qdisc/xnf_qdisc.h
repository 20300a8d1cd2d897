/* SPDX-License-Identifier: GPL-2.0 */
/* pifo_sched's BPF qdisc framework (struct_ops Qdisc_ops, Linux 6.16+ with NET_SCH_BPF).
 *
 * Include it through xnf_rank.h (the rank-function contract); do not include it alone.
 * The headers: xnf_rank.h the contract (struct xnf_pkt, XNF_RANK_FUNCTION); this one the
 * PIFO framework (modes, queues, the programs); xnf_qdisc_base.h what it shares with
 * FQ-CoDel (kernel types, kfuncs, common configuration and counters, the packets' slots,
 * classification, wire length, hold and shaper); xnf_heap.h the exact PIFO's heap.
 *
 * The report's four parts, in a qdisc:
 *   queue map   exact PIFOs: binary heaps on (rank, arrival number), one per scheduling
 *               node, in the `heaps` array map (one value per node); packets are skb
 *               kptrs in the `slots` array map, one skb per slot (a map value may hold
 *               only a few kptrs, so they cannot sit in one array);
 *   enqueue     xnf_qdisc_enqueue: classify (flow), rank, store, push;
 *   dequeue     xnf_qdisc_dequeue: pop the lowest (rank, arrival), hand the skb over;
 *   timer       the qdisc watchdog (bpf_qdisc_watchdog_schedule): `hold` keeps every
 *               packet queued and polls every hold_poll_ns until it is cleared.
 *
 * The modes (cfg_mode, .rodata, fixed at load):
 *   XNF_MODE_RANK  one PIFO of packets ranked by xnf_rank() (FIFO, strict priority,
 *                  a third party's rank function);
 *   XNF_MODE_TREE  a tree of fair-queueing nodes, each a PIFO of references to its
 *                  backlogged children (flows or nodes), ranked by start (STFQ) or finish
 *                  (WFQ) tags; a flat tree is STFQ/WFQ, a deeper one HPFQ. The same rules
 *                  as xnf.plugins.pifo_sched.hierarchy.FairNode, in integers;
 *   XNF_MODE_WF2Q  WF2Q+: an eligible PIFO by finish tag and a pending PIFO by start tag
 *                  (algorithms/wf2q.py);
 *   XNF_MODE_FLOWS one PIFO entry per backlogged flow, for its head packet, ranked again
 *                  after each packet, so a flow's packets stay in order
 *                  (scheduler.FlowOrderScheduler; stale entries skipped). SRPT: the head's
 *                  value (skb->priority: the bytes left in the flow) / granularity (srpt.py);
 *                  cfg_lstf: the closest deadline among the flow's queued packets, a packet
 *                  lowering it on arrival (lstf.py);
 *   XNF_MODE_SPPIFO SP-PIFO (sp_pifo.py): strict-priority FIFOs (children XNF_MAX_FLOWS +
 *                  band) whose rank bounds adapt (push-up, push-down) or cut [0, rank_max)
 *                  into equal bands; the rank is the flow's start-time fair queueing tag.
 * The tree and WF2Q+ PIFOs keep HeapPifo's rank windows (range 1<<20, primary and
 * secondary, ranks below the window raised to it), so their order is the simulator's.
 *
 * Tags are integers: cost(size) = max(1, (2*size*cost_num + cost_den) / (2*cost_den)),
 * the simulator's int(size * scale / weight + 0.5) with scale/weight as a fraction that
 * user space checks is exact for every packet size.
 */
#ifndef XNF_QDISC_H
#define XNF_QDISC_H

#include "xnf_qdisc_base.h"
#include "xnf_heap.h"

#define XNF_MAX_NODES 16              /* scheduling nodes; node 0 is the root */
#define XNF_NODE_MASK (XNF_MAX_NODES - 1)
#define XNF_MAX_CHILDREN 128          /* flows 0..63, then nodes from 64 (a mask bounds the index) */
#define XNF_CHILD_MASK 127
#define XNF_MAX_DEPTH 4               /* tree levels below the root */
#define XNF_RANK_RANGE (1ULL << cfg_range_shift)  /* hierarchy.RANK_RANGE; srpt.RANGE */

#define XNF_MODE_RANK 0
#define XNF_MODE_TREE 1
#define XNF_MODE_WF2Q 2
#define XNF_MODE_FLOWS 3
#define XNF_MODE_SPPIFO 4
#define XNF_MAX_BANDS 64              /* SP-PIFO bands: children XNF_MAX_FLOWS .. + 63 */

/* --- configuration (.rodata: set in the spec before load) ------------------------------ */
const volatile __u32 cfg_mode = XNF_MODE_RANK;
const volatile __u32 cfg_by_finish = 0;       /* tree mode: rank by finish tag (WFQ) */
const volatile __u32 cfg_range_shift = 20;    /* log2 of the PIFO windows (not rank mode) */
const volatile __u64 cfg_granularity = 64;    /* flows mode: bytes per rank step */
const volatile __u32 cfg_rank_windows = 0;    /* rank mode too keeps the PIFO windows (DRR) */
/* flows mode, LSTF: a packet's deadline is (arrival + slack) / resolution; its slack (ns) is
 * skb->priority, or when that is 0 the flow's (ch[flow].cost_num), at most max_slack_ns */
const volatile __u32 cfg_lstf = 0;
const volatile __u64 cfg_resolution_ns = 1000;
const volatile __u64 cfg_max_slack_ns = ~0ULL;
/* SP-PIFO: bands, adaptive bounds (else equal widths of [0, rank_max)) */
const volatile __u32 cfg_sp_bands = 8;
const volatile __u32 cfg_sp_adaptive = 1;
const volatile __u64 cfg_sp_rank_max = 100;
/* rank mode: ranks are times (ns of CLOCK_MONOTONIC); the lowest leaves once now reaches it */
const volatile __u32 cfg_time_gated = 0;

/* --- the queues ------------------------------------------------------------------------- */

/* the packets: `slots` (xnf_qdisc_base.h) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XNF_MAX_NODES);
	__type(key, __u32);
	__type(value, struct xnf_heap);
} heaps SEC(".maps");

/* A flow (index < XNF_MAX_FLOWS) or a scheduling node (XNF_MAX_FLOWS + node) as the
 * child of its parent node. Configuration fields are written by user space before load. */
struct xnf_child {
	__u32 parent;     /* config: parent node, XNF_NONE for the root and unused entries */
	__u32 weight;     /* config: WF2Q+: the weight in integer units (for the total) */
	__u64 cost_num;   /* config: cost(size) = round(size * cost_num / cost_den), >= 1 (SP-PIFO:
			   * rounded down, may be 0; DRR: the quantum; LSTF: the flow's slack, ns) */
	__u64 cost_den;
	__u32 configured; /* config: WF2Q+: counted in the total weight from the start */
	__u32 band;       /* config: strict priority band of the flow, XNF_NONE: skb->priority */
	__u64 start;
	__u64 finish;
	__u32 count;      /* packets queued in it */
	__u32 head, tail; /* a flow's FIFO of slots */
	__u32 seen;
	__u32 token;      /* flows mode: the current PIFO entry's token (never reset) */
	__u32 dq_len;     /* LSTF: the deque of closest deadlines: length, head, tail */
	__u32 dq_head, dq_tail;
	__u64 rank;       /* flows mode: the rank the flow was pushed with */
	__u64 sent_packets;
	__u64 sent_bytes;
	__u64 drops;
};

struct xnf_child ch[XNF_MAX_CHILDREN] = {};
__u64 vtime[XNF_MAX_NODES] = {};

/* --- run-time state and counters (.bss) ------------------------------------------------- */
__u64 seq_push;
__u64 drops_range, drops_rank;
__u64 beyond_window;      /* child entries queued beyond their PIFO's windows */
__u64 root_rank;          /* rank of the last entry out of the root PIFO (DRR's round) */
__u64 arr_log[XNF_LOG_SIZE];  /* arrival times (ns) of the first XNF_LOG_SIZE packets */
/* SP-PIFO */
__s64 sp_bound[XNF_MAX_BANDS];
__u64 sp_vtime;
/* WF2Q+ */
__u64 wf_vtime, wf_advance, wf_last_finish, wf_total;
const volatile __u64 cfg_wf_num = 1;         /* advance = size * num / total weight */

/* --- exact PIFO: a binary heap on (rank, push number) ----------------------------------- */
/* HeapPifo's window rule for a push of `rank` (already raised to min_rank when the
 * caller clamps): 0, or -1 when the rank is beyond what the queue can order now. With
 * `keep` (the PIFOs of children: a child missing from its parent's PIFO would never be
 * served again, its packets stranded), such a rank is queued anyway, by its own value,
 * outside both windows' counts (as a secondary entry); the simulator raises
 * RankRangeError there, so its order is never compared. It happens with ranks the
 * windows were not sized for, e.g. a GSO packet's tag (up to 64 KiB) under a scale
 * sized for max_packet. */
static __always_inline int xnf_window_push(struct xnf_heap *h, __u64 rank, int windows, int keep)
{
	__u64 off;

	if (!windows)
		return 0;
	off = rank - h->min_rank;
	if (off < XNF_RANK_RANGE) {
		h->in_primary++;
	} else if (off >= 2 * XNF_RANK_RANGE && !h->n) {
		h->min_rank = rank - rank % XNF_RANK_RANGE;
		h->in_primary = 1;
	} else if (off >= 2 * XNF_RANK_RANGE && (h->in_primary || off >= 3 * XNF_RANK_RANGE)) {
		if (!keep)
			return -1;
		beyond_window++;
	} else if (off >= 2 * XNF_RANK_RANGE) {
		h->min_rank += XNF_RANK_RANGE;
		h->in_primary = h->n;
	}
	return 0;
}

/* Push (rank, next push number, ref) into node's PIFO; clamp (the PIFOs of children):
 * raise a rank below the window to its base (push_clamped) and keep one beyond it (see
 * xnf_window_push). Returns 0, or -1 (full, or out of range without clamp). */
__attribute__((noinline)) int xnf_heap_push(__u32 node, __u64 rank, __u32 ref, int clamp)
{
	__u32 key = node & XNF_NODE_MASK;
	struct xnf_heap *h = bpf_map_lookup_elem(&heaps, &key);
	int windows = cfg_mode != XNF_MODE_RANK || cfg_rank_windows;

	if (!h || h->n >= XNF_MAX_PKTS)
		return -1;
	if (windows && clamp && rank < h->min_rank)
		rank = h->min_rank;
	if (windows && rank < h->min_rank)
		return -1;
	if (xnf_window_push(h, rank, windows, clamp))
		return -1;
	xnf_heap_sift_up(h, rank, ++seq_push, ref);
	return 0;
}

/* Pop the lowest (rank, push number) of node's PIFO: its ref, or XNF_NONE if empty. */
__attribute__((noinline)) __u32 xnf_heap_pop(__u32 node)
{
	__u32 key = node & XNF_NODE_MASK, ref;
	struct xnf_heap *h = bpf_map_lookup_elem(&heaps, &key);

	if (!h || !h->n)
		return XNF_NONE;
	if (cfg_mode != XNF_MODE_RANK || cfg_rank_windows) {
		if (!h->in_primary) {  /* the secondary window becomes primary */
			h->min_rank += XNF_RANK_RANGE;
			h->in_primary = h->n;
		}
		h->in_primary--;
	}
	ref = h->e[0].ref;
	if (key == 0)
		root_rank = h->e[0].rank;
	xnf_heap_sift_down(h);
	return ref;
}

/* The lowest entry of node's PIFO (rank into *rank), its ref or XNF_NONE. */
static __always_inline __u32 xnf_heap_peek(__u32 node, __u64 *rank)
{
	__u32 key = node & XNF_NODE_MASK;
	struct xnf_heap *h = bpf_map_lookup_elem(&heaps, &key);

	if (!h || !h->n)
		return XNF_NONE;
	*rank = h->e[0].rank;
	return h->e[0].ref;
}

/* --- children and their FIFOs of slots ------------------------------------------------- */
static __always_inline struct xnf_child *xnf_ch(__u32 idx)
{
	return &ch[xnf_bound(idx, XNF_CHILD_MASK)];
}

static __always_inline __u64 xnf_cost(__u32 len, struct xnf_child *c)
{
	__u64 den = c->cost_den ? c->cost_den : 1;
	__u64 v = (2 * (__u64)len * c->cost_num + den) / (2 * den);

	return v ? v : 1;
}

/* Append `slot` to the FIFO of slots of child `c` (a flow, or an SP-PIFO band). */
static __always_inline void xnf_fifo_push(struct xnf_child *c, __u32 slot)
{
	struct xnf_slot *s;

	if (c->count) {
		s = xnf_slot(c->tail);
		if (s)
			s->next = slot;
	} else {
		c->head = slot;
	}
	c->tail = slot;
	c->count++;
}

/* Take the head packet of child `c`'s FIFO: its slot entry (its index into *slot), or NULL. */
static __always_inline struct xnf_slot *xnf_fifo_take(struct xnf_child *c, __u32 *slot)
{
	struct xnf_slot *s = xnf_slot(c->head);

	if (!s)
		return NULL;
	*slot = c->head;
	c->head = s->next;
	c->count--;
	return s;
}

/* Size of the packet `c` would send next (FairNode.head_size). */
static __always_inline __u32 xnf_head_size(__u32 c)
{
	struct xnf_slot *s;
	__u64 rank;

	for (int d = 0; d < XNF_MAX_DEPTH + 1; d++) {
		if (c < XNF_MAX_FLOWS)
			break;
		c = xnf_heap_peek(c - XNF_MAX_FLOWS, &rank);
		if (c == XNF_NONE)
			return 0;
	}
	if (c >= XNF_MAX_FLOWS)
		return 0;
	s = xnf_slot(xnf_ch(c)->head);
	return s ? s->len : 0;
}

/* FairNode._push: node's PIFO gets child c at its start (or finish) tag. */
static __always_inline void xnf_node_push(__u32 node, __u32 c)
{
	struct xnf_child *cc = xnf_ch(c);
	__u64 rank = cc->start;

	if (cfg_by_finish)
		rank += xnf_cost(xnf_head_size(c), cc);
	if (xnf_heap_push(node, rank, c, 1))
		errors++;
}

/* --- the tree (STFQ, WFQ, HPFQ) --------------------------------------------------------- */
static __always_inline void xnf_tree_enqueue(__u32 flow, __u32 slot)
{
	struct xnf_child *parent;
	__u32 c = flow, p;

	xnf_fifo_push(xnf_ch(flow), slot);
	for (int d = 0; d < XNF_MAX_DEPTH; d++) {  /* push_packet: every ancestor */
		p = xnf_ch(c)->parent;
		if (p >= XNF_MAX_NODES)
			break;
		parent = xnf_ch(XNF_MAX_FLOWS + p);
		parent->count++;
		if (xnf_ch(c)->count == 1) {  /* FairNode.activate */
			__u64 v = vtime[xnf_bound(p, XNF_NODE_MASK)], f = xnf_ch(c)->finish;

			xnf_ch(c)->start = v > f ? v : f;
			xnf_node_push(p, c);
		}
		c = XNF_MAX_FLOWS + p;
	}
}

/* FairNode.pop from the root down, then each level's bookkeeping from the leaf up. */
static __always_inline __u32 xnf_tree_dequeue(void)
{
	__u32 path_node[XNF_MAX_DEPTH] = {}, path_child[XNF_MAX_DEPTH] = {};
	__u32 node = 0, c = XNF_NONE, slot, depth = 0, len;
	struct xnf_slot *s;

	if (!xnf_ch(XNF_MAX_FLOWS)->count)
		return XNF_NONE;
#pragma unroll
	for (int d = 0; d < XNF_MAX_DEPTH; d++) {
		c = xnf_heap_pop(node);
		if (c == XNF_NONE)
			return XNF_NONE;
		path_node[d] = node;
		path_child[d] = c;
		depth = d;
		if (c < XNF_MAX_FLOWS)
			break;
		node = c - XNF_MAX_FLOWS;
	}
	if (c >= XNF_MAX_FLOWS)
		return XNF_NONE;
	s = xnf_fifo_take(xnf_ch(c), &slot);
	if (!s)
		return XNF_NONE;
	len = s->len;
#pragma unroll
	for (int d = XNF_MAX_DEPTH - 1; d >= 0; d--) {
		if (d > depth)
			continue;
		__u32 n = path_node[d], k = path_child[d];
		struct xnf_child *cc = xnf_ch(k);
		__u64 tag, fin;

		xnf_ch(XNF_MAX_FLOWS + n)->count--;
		fin = cc->start + xnf_cost(len, cc);
		cc->finish = fin;
		tag = cfg_by_finish ? fin : cc->start;
		if (tag > vtime[xnf_bound(n, XNF_NODE_MASK)])
			vtime[xnf_bound(n, XNF_NODE_MASK)] = tag;
		if (cc->count) {
			cc->start = fin;
			xnf_node_push(n, k);
		}
	}
	return slot;
}

/* --- WF2Q+ ------------------------------------------------------------------------------ */
#define XNF_WF_ELIGIBLE 0
#define XNF_WF_PENDING 1

static __always_inline void xnf_wf_schedule(__u32 f)
{
	struct xnf_child *c = xnf_ch(f);

	c->finish = c->start + xnf_cost(xnf_head_size(f), c);
	if (c->start <= wf_vtime) {
		if (xnf_heap_push(XNF_WF_ELIGIBLE, c->finish, f, 1))
			errors++;
	} else if (xnf_heap_push(XNF_WF_PENDING, c->start, f, 1)) {
		errors++;
	}
}

static __always_inline void xnf_wf_enqueue(__u32 f, __u32 slot)
{
	struct xnf_child *c = xnf_ch(f);

	if (!c->seen) {
		c->seen = 1;
		if (!c->configured)
			wf_total += c->weight;
	}
	if (!count) {  /* a new busy period */
		__u64 v = wf_vtime + wf_advance;

		wf_vtime = v > wf_last_finish ? v : wf_last_finish;
		wf_advance = 0;
	}
	xnf_fifo_push(c, slot);
	if (c->count == 1) {
		c->start = wf_vtime > c->finish ? wf_vtime : c->finish;
		xnf_wf_schedule(f);
	}
}

static __always_inline __u32 xnf_wf_dequeue(void)
{
	__u64 rank = 0;
	__u32 f, slot;
	struct xnf_slot *s;
	struct xnf_child *c;

	wf_vtime += wf_advance;
	if (xnf_heap_peek(XNF_WF_ELIGIBLE, &rank) == XNF_NONE) {
		if (xnf_heap_peek(XNF_WF_PENDING, &rank) == XNF_NONE)
			return XNF_NONE;
		if (rank > wf_vtime)
			wf_vtime = rank;
	}
	for (int k = 0; k < XNF_MAX_FLOWS; k++) {
		if (xnf_heap_peek(XNF_WF_PENDING, &rank) == XNF_NONE || rank > wf_vtime)
			break;
		f = xnf_heap_pop(XNF_WF_PENDING);
		if (f >= XNF_MAX_FLOWS)
			break;
		if (xnf_heap_push(XNF_WF_ELIGIBLE, xnf_ch(f)->finish, f, 1))
			errors++;
	}
	f = xnf_heap_pop(XNF_WF_ELIGIBLE);
	if (f >= XNF_MAX_FLOWS)
		return XNF_NONE;
	c = xnf_ch(f);
	s = xnf_fifo_take(c, &slot);
	if (!s)
		return XNF_NONE;
	if (c->finish > wf_last_finish)
		wf_last_finish = c->finish;
	wf_advance = (__u64)s->len * cfg_wf_num / (wf_total ? wf_total : 1);
	if (c->count) {
		c->start = c->finish;
		xnf_wf_schedule(f);
	}
	return slot;
}

/* --- flows mode (SRPT, LSTF) ------------------------------------------------------------ */
#define XNF_TOKEN_MASK 0x1ffffff  /* ref = flow | token << 6 stays below XNF_NONE */
/* a push that lowers a queued flow's rank (LSTF) leaves its old entry behind, stale: it is
 * skipped while the PIFO holds more than this many entries, so every flow finds room */
#define XNF_FLOWS_LOWER_MAX (XNF_MAX_PKTS - XNF_MAX_FLOWS)

/* lstf.py: deadline = (arrival + slack) / resolution, the slack from skb->priority or else
 * the flow's (the simulator's packet.slack, else slack_ns by flow) */
static __always_inline __u64 xnf_lstf_deadline(const struct xnf_pkt *pkt)
{
	__u64 slack = pkt->priority ? pkt->priority : xnf_ch(pkt->flow)->cost_num;

	if (slack > cfg_max_slack_ns)
		slack = cfg_max_slack_ns;
	return (pkt->now + slack) / (cfg_resolution_ns ? cfg_resolution_ns : 1);
}

/* The loops below run through bpf_loop: a bounded loop of XNF_MAX_PKTS rounds with an exit
 * in each is more jumps than the verifier follows (8192). */
struct xnf_loop_ctx {
	__u32 flow;
	__u32 ref;
	__u64 value;
};

/* One round of xnf_lstf_joined: drop the deque's last deadline if later than ctx->value. */
static int xnf_lstf_drop_later(__u32 k, struct xnf_loop_ctx *x)
{
	struct xnf_child *c = xnf_ch(x->flow);
	struct xnf_slot *t;

	if (!c->dq_len)
		return 1;
	t = xnf_slot(c->dq_tail);
	if (!t || t->value <= x->value)
		return 1;
	c->dq_tail = t->dq_prev;
	c->dq_len--;
	return 0;
}

/* lstf.py's joined(): the flow's closest deadlines from the head on, one per packet still
 * queued and increasing, are a deque of slots; a new packet removes from its back those
 * later than its own deadline, so the deque's head is the closest of all. */
static __always_inline void xnf_lstf_joined(__u32 flow, __u32 slot, struct xnf_slot *s)
{
	struct xnf_loop_ctx x = {.flow = flow, .value = s->value};
	struct xnf_child *c = xnf_ch(flow);
	struct xnf_slot *t;

	bpf_loop(XNF_MAX_PKTS, xnf_lstf_drop_later, &x, 0);
	s->dq_prev = c->dq_tail;
	s->dq_next = XNF_NONE;
	if (c->dq_len) {
		t = xnf_slot(c->dq_tail);
		if (t)
			t->dq_next = slot;
	} else {
		c->dq_head = slot;
	}
	c->dq_tail = slot;
	c->dq_len++;
}

/* The flow's rank with its head packet at the head (flow_rank). */
static __always_inline __u64 xnf_flow_rank(__u32 f)
{
	struct xnf_child *c = xnf_ch(f);
	__u64 range = XNF_RANK_RANGE, r;
	struct xnf_slot *s;

	if (cfg_lstf) {  /* the closest deadline */
		s = xnf_slot(c->dq_head);
		return s ? s->value : 0;
	}
	s = xnf_slot(c->head);
	if (!s || !s->value)  /* remaining unknown: the last rank */
		return range - 1;
	r = s->value / (cfg_granularity ? cfg_granularity : 1);
	return r < range - 1 ? r : range - 1;
}

/* FlowOrderScheduler._push: held at the window's end, raised to its base. The flow's token
 * changes only when the entry is in, so a failed push leaves it its old entry. */
static __always_inline void xnf_flows_push(__u32 f, __u64 rank, int lowering)
{
	struct xnf_child *c = xnf_ch(f);
	__u32 key = 0, token;
	struct xnf_heap *h = bpf_map_lookup_elem(&heaps, &key);

	if (!h || (lowering && h->n > XNF_FLOWS_LOWER_MAX)) {
		errors++;
		return;
	}
	if (h->n && rank > h->min_rank + 2 * XNF_RANK_RANGE - 1)
		rank = h->min_rank + 2 * XNF_RANK_RANGE - 1;
	if (rank < h->min_rank)
		rank = h->min_rank;
	token = (c->token + 1) & XNF_TOKEN_MASK;
	if (xnf_heap_push(0, rank, f | (token << 6), 1)) {
		errors++;
		return;
	}
	c->token = token;
	c->rank = rank;
}

static __always_inline void xnf_flows_enqueue(const struct xnf_pkt *pkt, __u32 slot, struct xnf_slot *s)
{
	struct xnf_child *c = xnf_ch(pkt->flow);

	s->value = cfg_lstf ? xnf_lstf_deadline(pkt) : pkt->priority;
	xnf_fifo_push(c, slot);
	if (cfg_lstf)
		xnf_lstf_joined(pkt->flow, slot, s);
	if (c->count == 1)
		xnf_flows_push(pkt->flow, xnf_flow_rank(pkt->flow), 0);
	else if (cfg_lstf && s->value < c->rank)  /* arrival_rank: a closer deadline behind the head */
		xnf_flows_push(pkt->flow, s->value, 1);
}

/* One round of xnf_flows_dequeue: pop an entry; stop at an empty PIFO or a current entry. */
static int xnf_flows_pop(__u32 k, struct xnf_loop_ctx *x)
{
	__u32 ref = xnf_heap_pop(0);
	struct xnf_child *c;

	if (ref == XNF_NONE)
		return 1;
	c = xnf_ch(ref & (XNF_MAX_FLOWS - 1));
	if ((ref >> 6) != c->token || !c->count)
		return 0;
	x->ref = ref;
	return 1;
}

static __always_inline __u32 xnf_flows_dequeue(void)
{
	struct xnf_loop_ctx x = {.ref = XNF_NONE};
	struct xnf_slot *s;
	struct xnf_child *c;
	__u32 f, slot;

	/* skip stale entries (a flow's old entry after LSTF lowered its rank, or after it
	 * emptied); the PIFO holds at most XNF_MAX_PKTS */
	bpf_loop(XNF_MAX_PKTS, xnf_flows_pop, &x, 0);
	if (x.ref == XNF_NONE)
		return XNF_NONE;
	f = x.ref & (XNF_MAX_FLOWS - 1);
	c = xnf_ch(f);
	s = xnf_fifo_take(c, &slot);
	if (!s)
		return XNF_NONE;
	if (cfg_lstf && c->dq_len && c->dq_head == slot) {  /* lstf.py's left() */
		c->dq_head = s->dq_next;
		c->dq_len--;
	}
	if (c->count)
		xnf_flows_push(f, xnf_flow_rank(f), 0);
	else
		c->token = (c->token + 1) & XNF_TOKEN_MASK;
	return slot;
}

/* --- SP-PIFO ---------------------------------------------------------------------------- */
/* sp_pifo.py's band_of: the lowest-priority band whose bound is not above the rank takes the
 * packet and its bound becomes the rank (push-up); a rank below every bound goes to band 0
 * and every bound drops by the difference (push-down), so bounds are signed. */
static __always_inline __u32 xnf_sp_band(__s64 rank)
{
	__u32 bands = cfg_sp_bands < XNF_MAX_BANDS ? cfg_sp_bands : XNF_MAX_BANDS;
	__s64 cost;
	__u64 b;

	if (!bands)
		return 0;
	if (!cfg_sp_adaptive) {  /* equal widths of [0, rank_max) */
		b = (__u64)(rank > 0 ? rank : 0) * bands / (cfg_sp_rank_max ? cfg_sp_rank_max : 1);
		return b < bands - 1 ? b : bands - 1;
	}
	for (int i = XNF_MAX_BANDS - 1; i >= 0; i--) {
		if (i >= bands)
			continue;
		if (rank >= sp_bound[i]) {  /* push-up */
			sp_bound[i] = rank;
			return i;
		}
	}
	cost = sp_bound[0] - rank;  /* push-down */
	for (int i = 0; i < XNF_MAX_BANDS; i++)
		if (i < bands)
			sp_bound[i] -= cost;
	return 0;
}

/* The rank is the flow's start tag: max(virtual time, the flow's finish), the finish moving
 * on by int(size * 64 / weight) (cost_num / cost_den, rounded down); the virtual time is the
 * highest rank served. */
static __always_inline void xnf_sp_enqueue(const struct xnf_pkt *pkt, __u32 slot, struct xnf_slot *s)
{
	struct xnf_child *c = xnf_ch(pkt->flow);
	__u64 start = sp_vtime > c->finish ? sp_vtime : c->finish;

	c->finish = start + (__u64)pkt->len * c->cost_num / (c->cost_den ? c->cost_den : 1);
	s->value = start;
	xnf_fifo_push(xnf_ch(XNF_MAX_FLOWS + xnf_sp_band(start)), slot);
}

/* The first packet of the highest-priority band that has one. */
static __always_inline __u32 xnf_sp_dequeue(void)
{
	struct xnf_slot *s;
	struct xnf_child *c;
	__u32 slot;

	for (int i = 0; i < XNF_MAX_BANDS; i++) {
		if (i >= cfg_sp_bands)
			break;
		c = xnf_ch(XNF_MAX_FLOWS + i);
		if (!c->count)
			continue;
		s = xnf_fifo_take(c, &slot);
		if (!s)
			return XNF_NONE;
		if (s->value > sp_vtime)
			sp_vtime = s->value;
		return slot;
	}
	return XNF_NONE;
}

/* --- the struct_ops programs ------------------------------------------------------------ */
static __always_inline int xnf_drop(struct sk_buff *skb, struct Qdisc *sch, struct bpf_sk_buff_ptr *to_free,
				    __u64 *counter, __u32 flow)
{
	(*counter)++;
	xnf_ch(flow)->drops++;
	return xnf_drop_skb(skb, sch, to_free);
}

SEC("struct_ops/xnf_qdisc_enqueue")
int BPF_PROG(xnf_qdisc_enqueue, struct sk_buff *skb, struct Qdisc *sch, struct bpf_sk_buff_ptr *to_free)
{
	__u32 flow = xnf_classify(skb), len = xnf_wire_len(skb), idx;
	struct xnf_pkt pkt = {};
	struct xnf_slot *s;
	__u64 rank = 0;

	if (count >= sch->limit || count >= XNF_MAX_PKTS)
		return xnf_drop(skb, sch, to_free, &drops_overflow, flow);
	pkt.len = len;
	pkt.flow = flow;
	pkt.mark = skb->mark;
	pkt.priority = skb->priority;
	pkt.tstamp = skb->tstamp;
	pkt.now = bpf_ktime_get_ns();
	pkt.seq = seq_in + 1;
	if (cfg_mode == XNF_MODE_RANK) {
		rank = xnf_rank(&pkt);
		if (rank == XNF_RANK_DROP)
			return xnf_drop(skb, sch, to_free, &drops_rank, flow);
	}
	s = xnf_slot_store(skb, to_free, len, flow, pkt.priority, &idx);
	if (!s)
		return xnf_drop(skb, sch, to_free, &drops_overflow, flow);
	if (seq_in <= XNF_LOG_SIZE)
		arr_log[(seq_in - 1) & (XNF_LOG_SIZE - 1)] = pkt.now;
	if (cfg_mode == XNF_MODE_RANK) {
		if (xnf_heap_push(0, rank, idx, 0)) {  /* full: XNF_MAX_PKTS bounds count */
			errors++;
			skb = bpf_kptr_xchg(&s->skb, NULL);
			if (skb)
				bpf_qdisc_skb_drop(skb, to_free);
			xnf_slot_free(idx);
			drops_range++;
			return NET_XMIT_DROP;
		}
	} else if (cfg_mode == XNF_MODE_TREE) {
		xnf_tree_enqueue(flow, idx);
	} else if (cfg_mode == XNF_MODE_FLOWS) {
		xnf_flows_enqueue(&pkt, idx, s);
	} else if (cfg_mode == XNF_MODE_SPPIFO) {
		xnf_sp_enqueue(&pkt, idx, s);
	} else {
		xnf_wf_enqueue(flow, idx);
	}
	return xnf_queued(sch, len);
}

SEC("struct_ops/xnf_qdisc_dequeue")
struct sk_buff *BPF_PROG(xnf_qdisc_dequeue, struct Qdisc *sch)
{
	struct sk_buff *skb;
	__u64 now = 0;
	__u32 idx, len, flow;

	if (!count || xnf_held(sch))
		return NULL;
	if (cfg_ns_per_byte_q16)  /* the clock is read only when shaping */
		now = bpf_ktime_get_ns();
	if (xnf_shaped(sch, now))
		return NULL;
	if (cfg_mode == XNF_MODE_RANK && cfg_time_gated) {
		__u64 at = 0, t = bpf_ktime_get_ns();

		if (xnf_heap_peek(0, &at) != XNF_NONE && at > t) {  /* the timer hook: wake at the time */
			bpf_qdisc_watchdog_schedule(sch, at, 0);
			return NULL;
		}
	}
	if (cfg_mode == XNF_MODE_RANK)
		idx = xnf_heap_pop(0);
	else if (cfg_mode == XNF_MODE_TREE)
		idx = xnf_tree_dequeue();
	else if (cfg_mode == XNF_MODE_FLOWS)
		idx = xnf_flows_dequeue();
	else if (cfg_mode == XNF_MODE_SPPIFO)
		idx = xnf_sp_dequeue();
	else
		idx = xnf_wf_dequeue();
	if (idx == XNF_NONE) {
		errors++;
		return NULL;
	}
	count--;
	skb = xnf_slot_take(idx, &len, &flow);
	if (!skb)
		return NULL;
	xnf_ch(flow)->sent_packets++;
	xnf_ch(flow)->sent_bytes += len;
	return xnf_sent(sch, skb, len, now);
}

/* Free every queued packet; the scheduling state starts over. */
static __always_inline void xnf_reset_all(struct Qdisc *sch)
{
	__u32 key;

	xnf_flush(sch);
	for (__u32 i = 0; i < XNF_MAX_NODES; i++) {
		struct xnf_heap *h;

		key = i;
		h = bpf_map_lookup_elem(&heaps, &key);
		if (h) {
			h->n = 0;
			h->in_primary = 0;
			h->min_rank = 0;
		}
		vtime[i & XNF_NODE_MASK] = 0;
	}
	for (__u32 i = 0; i < XNF_MAX_CHILDREN; i++) {
		struct xnf_child *c = xnf_ch(i);

		c->count = 0;
		c->start = 0;
		c->finish = 0;
		c->seen = 0;
		c->dq_len = 0;
	}
	for (__u32 i = 0; i < XNF_MAX_BANDS; i++)
		sp_bound[i] = 0;
	sp_vtime = 0;
	wf_vtime = wf_advance = wf_last_finish = 0;
}

SEC("struct_ops/xnf_qdisc_reset")
void BPF_PROG(xnf_qdisc_reset, struct Qdisc *sch)
{
	xnf_reset_all(sch);
}

SEC("struct_ops/xnf_qdisc_destroy")
void BPF_PROG(xnf_qdisc_destroy, struct Qdisc *sch)
{
	xnf_reset_all(sch);
}

/* The struct_ops variable: user space sets `.id` (the qdisc kind) per instance. */
SEC(".struct_ops.link")
struct Qdisc_ops xnf_pifo = {
	.enqueue = (void *)xnf_qdisc_enqueue,
	.dequeue = (void *)xnf_qdisc_dequeue,
	.init = (void *)xnf_qdisc_init,
	.reset = (void *)xnf_qdisc_reset,
	.destroy = (void *)xnf_qdisc_destroy,
	.id = "xnf_pifo",
};

#endif
