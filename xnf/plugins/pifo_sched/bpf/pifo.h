/* SPDX-License-Identifier: GPL-2.0 */
/* The bucketed PIFO of the BPF PIFO-map design, in an ordinary array map value.
 *
 * Same semantics as xnf/plugins/pifo_sched/pifo.py (BucketedPifo): PIFO_RANGE FIFO
 * buckets per window, a two-level tree of 64-bit bitmaps to find the first non-empty
 * bucket, a primary and a secondary window that rotate so growing ranks stay in
 * order, -ERANGE for a rank outside the windows, -EOVERFLOW when PIFO_CAPACITY
 * elements are queued, -ENOENT on an empty queue. Buckets are singly linked lists
 * through an element pool with a free list; every index is masked, every loop is
 * bounded, so the verifier accepts it in any program type.
 *
 * Use: one `struct pifo` per queue in an array map; call pifo_enqueue() and
 * pifo_dequeue() on a pointer from bpf_map_lookup_elem(). Zeroed map memory is a
 * valid empty queue with windows [0, R) and [R, 2R).
 */
#ifndef XNF_PIFO_H
#define XNF_PIFO_H

#include <linux/types.h>

#ifndef PIFO_RANGE_SHIFT
#define PIFO_RANGE_SHIFT 12 /* two bitmap levels: 64 x 64 buckets */
#endif
#ifndef PIFO_CAPACITY_SHIFT
#define PIFO_CAPACITY_SHIFT 13
#endif
#define PIFO_RANGE (1U << PIFO_RANGE_SHIFT)
#define PIFO_CAPACITY (1U << PIFO_CAPACITY_SHIFT)
#define PIFO_LEAF_WORDS (PIFO_RANGE / 64)

#define PIFO_ERANGE 34    /* ERANGE */
#define PIFO_EOVERFLOW 75 /* EOVERFLOW */
#define PIFO_ENOENT 2     /* ENOENT */

_Static_assert(PIFO_RANGE_SHIFT <= 12 && PIFO_RANGE_SHIFT >= 6, "two bitmap levels hold 64..4096 buckets");

struct pifo_elem {
	__u64 value;
	__u32 next; /* pool index + 1 of the next element in the bucket, 0 at the tail */
	__u32 pad;
};

struct pifo_window {
	__u32 count;
	__u32 pad;
	__u64 top;
	__u64 leaf[PIFO_LEAF_WORDS];
	__u32 head[PIFO_RANGE]; /* pool index + 1, 0 when the bucket is empty */
	__u32 tail[PIFO_RANGE];
};

struct pifo {
	__u64 base;    /* lowest rank of the primary window; the secondary starts at base + R */
	__u32 primary; /* 0 or 1: which window is primary */
	__u32 len;
	__u32 free_head; /* pool index + 1 of the first free element, 0 if none */
	__u32 unused;    /* pool elements never handed out yet */
	struct pifo_window win[2];
	struct pifo_elem pool[PIFO_CAPACITY];
};

static __always_inline __u32 pifo_ffs64(__u64 x)
{
	__u32 n = 0;

	if (!(x & 0xffffffffULL)) { n += 32; x >>= 32; }
	if (!(x & 0xffffULL)) { n += 16; x >>= 16; }
	if (!(x & 0xffULL)) { n += 8; x >>= 8; }
	if (!(x & 0xfULL)) { n += 4; x >>= 4; }
	if (!(x & 0x3ULL)) { n += 2; x >>= 2; }
	if (!(x & 0x1ULL)) { n += 1; }
	return n;
}

static __always_inline void pifo_rotate(struct pifo *q)
{
	q->primary = (q->primary & 1) ^ 1;
	q->base += PIFO_RANGE;
}

static __always_inline void pifo_window_push(struct pifo *q, __u32 w, __u32 idx, __u32 e)
{
	struct pifo_window *win = &q->win[w & 1];
	__u32 tail;

	idx &= PIFO_RANGE - 1;
	tail = win->tail[idx];
	if (tail) {
		q->pool[(tail - 1) & (PIFO_CAPACITY - 1)].next = e + 1;
	} else {
		win->head[idx] = e + 1;
		win->leaf[(idx >> 6) & (PIFO_LEAF_WORDS - 1)] |= 1ULL << (idx & 63);
		win->top |= 1ULL << ((idx >> 6) & 63);
	}
	win->tail[idx] = e + 1;
	win->count++;
}

/* 0, or -PIFO_ERANGE / -PIFO_EOVERFLOW; nothing changes on error. */
static __always_inline int pifo_enqueue(struct pifo *q, __u64 rank, __u64 value)
{
	__u32 p = q->primary & 1, s = p ^ 1, e;
	__u64 off;

	if (q->len >= PIFO_CAPACITY)
		return -PIFO_EOVERFLOW;
	if (rank < q->base)
		return -PIFO_ERANGE;
	off = rank - q->base;
	if (off >= 2ULL * PIFO_RANGE) {
		if (!q->len) { /* empty: jump forward to the rank */
			q->base = rank & ~((__u64)PIFO_RANGE - 1);
			off = rank - q->base;
		} else if (!q->win[p].count && off < 3ULL * PIFO_RANGE) {
			pifo_rotate(q); /* primary empty: move the windows on */
			p = s;
			s = p ^ 1;
			off = rank - q->base;
		} else {
			return -PIFO_ERANGE;
		}
	}
	if (q->free_head) {
		e = (q->free_head - 1) & (PIFO_CAPACITY - 1);
		q->free_head = q->pool[e].next;
	} else {
		e = q->unused++ & (PIFO_CAPACITY - 1);
	}
	q->pool[e].value = value;
	q->pool[e].next = 0;
	if (off < PIFO_RANGE)
		pifo_window_push(q, p, (__u32)off, e);
	else
		pifo_window_push(q, s, (__u32)(off - PIFO_RANGE), e);
	q->len++;
	return 0;
}

/* 0 and the lowest-rank, earliest element in *rank / *value, or -PIFO_ENOENT. */
static __always_inline int pifo_dequeue(struct pifo *q, __u64 *rank, __u64 *value)
{
	struct pifo_window *win;
	__u32 w, hi, lo, idx, e;

	if (!q->len)
		return -PIFO_ENOENT;
	if (!q->win[q->primary & 1].count)
		pifo_rotate(q);
	w = q->primary & 1;
	win = &q->win[w];
	hi = pifo_ffs64(win->top) & (PIFO_LEAF_WORDS - 1);
	lo = pifo_ffs64(win->leaf[hi]);
	idx = ((hi << 6) | lo) & (PIFO_RANGE - 1);
	e = (win->head[idx] - 1) & (PIFO_CAPACITY - 1);
	*rank = q->base + idx;
	*value = q->pool[e].value;
	win->head[idx] = q->pool[e].next;
	if (!win->head[idx]) {
		win->tail[idx] = 0;
		win->leaf[hi] &= ~(1ULL << lo);
		if (!win->leaf[hi])
			win->top &= ~(1ULL << hi);
	}
	q->pool[e].next = q->free_head;
	q->free_head = e + 1;
	win->count--;
	q->len--;
	return 0;
}

#endif /* XNF_PIFO_H */
