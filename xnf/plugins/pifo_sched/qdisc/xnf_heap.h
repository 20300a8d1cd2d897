/* SPDX-License-Identifier: GPL-2.0 */
/* The exact PIFO's binary heap on (rank, push number): its entries and its two sift loops,
 * one copy shared by the qdisc (xnf_qdisc.h, which adds the map lookup, push numbers and
 * rank windows around them) and bench/bpf/pifo_designs.bpf.c (which measures this heap
 * against an rbtree and find-first-set buckets). Needs <linux/bpf.h> and bpf_helpers.h. */
#ifndef XNF_HEAP_H
#define XNF_HEAP_H

#ifndef XNF_MAX_PKTS
#define XNF_MAX_PKTS 4096             /* packets held at most (slots; heap capacity) */
#endif
#define XNF_PKT_MASK (XNF_MAX_PKTS - 1)
#define XNF_HEAP_LEVELS 13            /* log2(XNF_MAX_PKTS) + 1 */

struct xnf_entry {
	__u64 rank;
	__u64 seq;        /* push number: equal ranks leave in push order */
	__u32 ref;        /* slot (rank mode) or child index */
	__u32 pad;
};

struct xnf_heap {
	__u64 min_rank;   /* the primary window's base (tree and WF2Q+ modes) */
	__u32 n;
	__u32 in_primary;
	__u32 cursor;     /* the sift-down position, kept in the map so the verifier does not
			   * follow each exact path of the loop (3^13 of them): read back, it
			   * is any index, and one pass of the loop body covers them all */
	__u32 pad;
	struct xnf_entry e[XNF_MAX_PKTS];
};

static __always_inline int xnf_less(const struct xnf_entry *a, __u64 rank, __u64 seq)
{
	return a->rank < rank || (a->rank == rank && a->seq < seq);
}

/* Add (rank, seq, ref) as a new leaf and sift it up; the caller checked h->n < XNF_MAX_PKTS. */
static __always_inline void xnf_heap_sift_up(struct xnf_heap *h, __u64 rank, __u64 seq, __u32 ref)
{
	__u32 i = h->n, p;

	for (int k = 0; k < XNF_HEAP_LEVELS; k++) {
		if (i == 0)
			break;
		p = (i - 1) / 2;
		if (xnf_less(&h->e[p & XNF_PKT_MASK], rank, seq))  /* the parent goes first: here */
			break;
		h->e[i & XNF_PKT_MASK] = h->e[p & XNF_PKT_MASK];
		i = p;
	}
	h->e[i & XNF_PKT_MASK].rank = rank;
	h->e[i & XNF_PKT_MASK].seq = seq;
	h->e[i & XNF_PKT_MASK].ref = ref;
	h->n++;
}

/* Drop the root (the caller has read it; h->n > 0) and sift the last leaf down in its place. */
static __always_inline void xnf_heap_sift_down(struct xnf_heap *h)
{
	__u32 i, c, n = --h->n;
	struct xnf_entry last = h->e[n & XNF_PKT_MASK];

	*(volatile __u32 *)&h->cursor = 0;
	for (int k = 0; k < XNF_HEAP_LEVELS; k++) {
		i = *(volatile __u32 *)&h->cursor & XNF_PKT_MASK;
		c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && xnf_less(&h->e[(c + 1) & XNF_PKT_MASK], h->e[c & XNF_PKT_MASK].rank,
					  h->e[c & XNF_PKT_MASK].seq))
			c++;
		if (!xnf_less(&h->e[c & XNF_PKT_MASK], last.rank, last.seq))
			break;
		h->e[i & XNF_PKT_MASK] = h->e[c & XNF_PKT_MASK];
		*(volatile __u32 *)&h->cursor = c;
	}
	i = *(volatile __u32 *)&h->cursor;
	h->e[i & XNF_PKT_MASK] = last;
}

#endif
