// SPDX-License-Identifier: GPL-2.0
/* Three exact-PIFO designs for the BPF qdisc, side by side (bench/pifo_designs.py, issue 11).
 *
 * Each `*_run` program (tc, run by BPF_PROG_TEST_RUN with a repeat count) pushes the
 * `n` ranks of `trace` in order (the push's ref is the trace index) and then pops `n`
 * times, writing each popped ref into `out`; the queue is empty again after a run.
 * `base_run` is the same two bpf_loop()s with no queue (it reads the trace and writes
 * `out` alike), the harness cost the others are net of.
 *
 * heap   the qdisc's binary heap on (rank, push number): xnf_heap.h's sift loops, which
 *        xnf_qdisc.h's xnf_heap_push and xnf_heap_pop wrap (in rank mode, as here).
 * rbtree bpf_obj_new() nodes keyed by (rank, push number) in a bpf_rb_root, added, found
 *        and removed under the bpf_spin_lock beside it in a map value (bpf_rbtree_add,
 *        bpf_rbtree_first, bpf_rbtree_remove), then freed (bpf_obj_drop). To split its
 *        cost, `rballoc_run` only allocates and frees a node per element and
 *        `rblock_run` only takes and drops the lock twice per element (each with the
 *        base loop's other half, so the base subtracts alike).
 * ffs    the PIFO map RFC's bucketed design: FFS_BUCKETS FIFO buckets, each rank
 *        (rank - ffs_base) >> ffs_shift, found by find-first-set down a three-level tree
 *        of 64-bit bitmaps; elements from a pool with a free list. Exact (rank order,
 *        FIFO among equals) only while every rank is within FFS_BUCKETS of ffs_base at
 *        ffs_shift 0; with a shift, ranks sharing a bucket leave in arrival order. A rank
 *        outside the buckets is refused (counted in `errors`).
 *
 * All three push and pop through global (noinline) functions that look their queue up
 * in an array map, as the qdisc's heap does.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "xnf_heap.h"  /* the qdisc's heap: xnf/plugins/pifo_sched/qdisc, on build-bpf's path */

#define MAX_N XNF_MAX_PKTS     /* elements per queue */
#define N_MASK XNF_PKT_MASK
#define MAX_NODES 16           /* XNF_MAX_NODES: one heap per scheduling node */
#define NODE_MASK (MAX_NODES - 1)
#define NONE 0xffffffffu
#define FFS_SHIFT_BITS 18      /* 64 x 64 x 64 buckets */
#define FFS_BUCKETS (1u << FFS_SHIFT_BITS)

/* --- inputs and outputs (.bss, written and read by bench/pifo_designs.py) ------------ */
__u32 n;                      /* pushes, then pops, per run */
__u32 ffs_shift;
__u64 ffs_base;
__u64 errors;                 /* failed pushes and empty pops */
__u64 sink;
__u64 trace[MAX_N];
__u32 out[MAX_N];

/* --- heap: the qdisc's own (xnf_heap.h), in an array map, as xnf_qdisc.h keeps it ------ */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_NODES);
	__type(key, __u32);
	__type(value, struct xnf_heap);
} heaps SEC(".maps");

__u64 seq_push, root_rank;

/* xnf_qdisc.h's xnf_heap_push and xnf_heap_pop in rank mode, where the rank windows are
 * off by a frozen .rodata flag (the verifier drops that code), so they are left out. */
__attribute__((noinline)) int heap_push(__u32 node, __u64 rank, __u32 ref)
{
	__u32 key = node & NODE_MASK;
	struct xnf_heap *h = bpf_map_lookup_elem(&heaps, &key);

	if (!h || h->n >= MAX_N)
		return -1;
	xnf_heap_sift_up(h, rank, ++seq_push, ref);
	return 0;
}

__attribute__((noinline)) __u32 heap_pop(__u32 node)
{
	__u32 key = node & NODE_MASK, ref;
	struct xnf_heap *h = bpf_map_lookup_elem(&heaps, &key);

	if (!h || !h->n)
		return NONE;
	ref = h->e[0].ref;
	if (key == 0)
		root_rank = h->e[0].rank;
	xnf_heap_sift_down(h);
	return ref;
}

/* --- rbtree: bpf_obj_new() nodes under a bpf_spin_lock --------------------------------- */
/* The uapi types the host's 6.1 headers lack (the kernel's sizes: 16 and 32 bytes). */
struct bpf_rb_root {
	__u64 __opaque[2];
} __attribute__((aligned(8)));

struct bpf_rb_node {
	__u64 __opaque[4];
} __attribute__((aligned(8)));

#define __contains(name, node) __attribute__((btf_decl_tag("contains:" #name ":" #node)))

extern void *bpf_obj_new_impl(__u64 local_type_id, void *meta) __ksym;
extern void bpf_obj_drop_impl(void *kptr, void *meta) __ksym;
extern int bpf_rbtree_add_impl(struct bpf_rb_root *root, struct bpf_rb_node *node,
			       _Bool (less)(struct bpf_rb_node *a, const struct bpf_rb_node *b),
			       void *meta, __u64 off) __ksym;
extern struct bpf_rb_node *bpf_rbtree_first(struct bpf_rb_root *root) __ksym;
extern struct bpf_rb_node *bpf_rbtree_remove(struct bpf_rb_root *root, struct bpf_rb_node *node) __ksym;

struct rb_elem {
	struct bpf_rb_node node;
	__u64 rank;
	__u64 seq;
	__u32 ref;
};

struct rb_queue {
	struct bpf_spin_lock lock;
	struct bpf_rb_root root __contains(rb_elem, node);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rb_queue);
} rbq SEC(".maps");

__u64 rb_seq;

static _Bool rb_less(struct bpf_rb_node *a, const struct bpf_rb_node *b)
{
	struct rb_elem *x = container_of(a, struct rb_elem, node);
	struct rb_elem *y = container_of(b, struct rb_elem, node);

	return x->rank < y->rank || (x->rank == y->rank && x->seq < y->seq);
}

__attribute__((noinline)) int rb_push(__u64 rank, __u32 ref)
{
	__u32 key = 0;
	struct rb_queue *q = bpf_map_lookup_elem(&rbq, &key);
	struct rb_elem *e;

	if (!q)
		return -1;
	e = bpf_obj_new_impl(bpf_core_type_id_local(struct rb_elem), NULL);
	if (!e)
		return -1;
	e->rank = rank;
	e->seq = ++rb_seq;
	e->ref = ref;
	bpf_spin_lock(&q->lock);
	bpf_rbtree_add_impl(&q->root, &e->node, rb_less, NULL, 0);
	bpf_spin_unlock(&q->lock);
	return 0;
}

__attribute__((noinline)) __u32 rb_pop(void)
{
	__u32 key = 0, ref;
	struct rb_queue *q = bpf_map_lookup_elem(&rbq, &key);
	struct bpf_rb_node *node;
	struct rb_elem *e;

	if (!q)
		return NONE;
	bpf_spin_lock(&q->lock);
	node = bpf_rbtree_first(&q->root);
	if (!node) {
		bpf_spin_unlock(&q->lock);
		return NONE;
	}
	node = bpf_rbtree_remove(&q->root, node);
	bpf_spin_unlock(&q->lock);
	if (!node)
		return NONE;
	e = container_of(node, struct rb_elem, node);
	ref = e->ref;
	bpf_obj_drop_impl(e, NULL);
	return ref;
}

/* The rbtree design's fixed costs, to split it: a node's allocation and free (one per
 * push+pop), and a lock taken and dropped (two per push+pop). */
__attribute__((noinline)) int rb_alloc_free(__u64 rank, __u32 ref)
{
	struct rb_elem *e = bpf_obj_new_impl(bpf_core_type_id_local(struct rb_elem), NULL);

	if (!e)
		return -1;
	e->rank = rank;
	e->seq = ++rb_seq;
	e->ref = ref;
	bpf_obj_drop_impl(e, NULL);
	return 0;
}

__attribute__((noinline)) int rb_lock_unlock(void)
{
	__u32 key = 0;
	struct rb_queue *q = bpf_map_lookup_elem(&rbq, &key);

	if (!q)
		return -1;
	bpf_spin_lock(&q->lock);
	bpf_spin_unlock(&q->lock);
	return 0;
}

/* --- ffs: FIFO buckets found by find-first-set ----------------------------------------- */
struct ffs_elem {
	__u32 ref;
	__u32 next;               /* pool index + 1 of the next element in the bucket, 0 at the tail */
};

struct ffs_queue {
	__u32 n;
	__u32 free_head;          /* pool index + 1 of the first free element, 0 if none */
	__u32 unused;             /* pool elements never handed out yet */
	__u32 pad;
	__u64 top;                /* bit t: mid[t] is not 0 */
	__u64 mid[64];            /* bit m of mid[t]: leaf[t * 64 + m] is not 0 */
	__u64 leaf[FFS_BUCKETS / 64];
	__u32 head[FFS_BUCKETS];  /* pool index + 1, 0 when the bucket is empty */
	__u32 tail[FFS_BUCKETS];
	struct ffs_elem pool[MAX_N];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ffs_queue);
} ffsq SEC(".maps");

/* Index of the lowest set bit of x (not 0): the lowest bit isolated, times a de Bruijn
 * sequence, whose top six bits are then unique per bit (no branch: three ffs64 of six
 * branches each, in one function, gave the verifier more paths than it explores). */
static const __u8 debruijn_bit[64] = {
	0, 1, 48, 2, 57, 49, 28, 3, 61, 58, 50, 42, 38, 29, 17, 4,
	62, 55, 59, 36, 53, 51, 43, 22, 45, 39, 33, 30, 24, 18, 12, 5,
	63, 47, 56, 27, 60, 41, 37, 16, 54, 35, 52, 21, 44, 32, 23, 11,
	46, 26, 40, 15, 34, 20, 31, 10, 25, 14, 19, 9, 13, 8, 7, 6,
};

static __always_inline __u32 ffs64(__u64 x)
{
	return debruijn_bit[((x & -x) * 0x03f79d71b4cb0a89ULL) >> 58];
}

__attribute__((noinline)) int ffs_push(__u64 rank, __u32 ref)
{
	__u32 key = 0, b, e, w, t;
	struct ffs_queue *q = bpf_map_lookup_elem(&ffsq, &key);
	__u64 off;

	if (!q || q->n >= MAX_N || rank < ffs_base)
		return -1;
	off = (rank - ffs_base) >> (ffs_shift & 63);
	if (off >= FFS_BUCKETS)
		return -1;
	b = off;
	if (q->free_head) {
		e = (q->free_head - 1) & N_MASK;
		q->free_head = q->pool[e].next;
	} else {
		e = q->unused++ & N_MASK;
	}
	q->pool[e].ref = ref;
	q->pool[e].next = 0;
	if (q->tail[b]) {
		q->pool[(q->tail[b] - 1) & N_MASK].next = e + 1;
	} else {
		q->head[b] = e + 1;
		w = b >> 6;
		t = w >> 6;
		if (!q->leaf[w]) {
			if (!q->mid[t])
				q->top |= 1ULL << t;
			q->mid[t] |= 1ULL << (w & 63);
		}
		q->leaf[w] |= 1ULL << (b & 63);
	}
	q->tail[b] = e + 1;
	q->n++;
	return 0;
}

__attribute__((noinline)) __u32 ffs_pop(void)
{
	__u32 key = 0, t, w, b, e, ref;
	struct ffs_queue *q = bpf_map_lookup_elem(&ffsq, &key);

	if (!q || !q->n)
		return NONE;
	t = ffs64(q->top) & 63;
	w = ((t << 6) | ffs64(q->mid[t])) & (FFS_BUCKETS / 64 - 1);
	b = ((w << 6) | ffs64(q->leaf[w])) & (FFS_BUCKETS - 1);
	e = (q->head[b] - 1) & N_MASK;
	ref = q->pool[e].ref;
	q->head[b] = q->pool[e].next;
	if (!q->head[b]) {
		q->tail[b] = 0;
		q->leaf[w] &= ~(1ULL << (b & 63));
		if (!q->leaf[w]) {
			q->mid[t] &= ~(1ULL << (w & 63));
			if (!q->mid[t])
				q->top &= ~(1ULL << t);
		}
	}
	q->pool[e].next = q->free_head;
	q->free_head = e + 1;
	q->n--;
	return ref;
}

/* --- the runs --------------------------------------------------------------------------- */
static long heap_push_cb(__u64 i, void *ctx)
{
	if (heap_push(0, trace[i & N_MASK], i))
		errors++;
	return 0;
}

static long heap_pop_cb(__u64 i, void *ctx)
{
	__u32 ref = heap_pop(0);

	if (ref == NONE)
		errors++;
	out[i & N_MASK] = ref;
	return 0;
}

static long rb_push_cb(__u64 i, void *ctx)
{
	if (rb_push(trace[i & N_MASK], i))
		errors++;
	return 0;
}

static long rb_pop_cb(__u64 i, void *ctx)
{
	__u32 ref = rb_pop();

	if (ref == NONE)
		errors++;
	out[i & N_MASK] = ref;
	return 0;
}

static long rb_alloc_cb(__u64 i, void *ctx)
{
	if (rb_alloc_free(trace[i & N_MASK], i))
		errors++;
	return 0;
}

static long rb_lock_cb(__u64 i, void *ctx)
{
	if (rb_lock_unlock() || rb_lock_unlock())
		errors++;
	out[i & N_MASK] = i;
	return 0;
}

static long ffs_push_cb(__u64 i, void *ctx)
{
	if (ffs_push(trace[i & N_MASK], i))
		errors++;
	return 0;
}

static long ffs_pop_cb(__u64 i, void *ctx)
{
	__u32 ref = ffs_pop();

	if (ref == NONE)
		errors++;
	out[i & N_MASK] = ref;
	return 0;
}

static long base_push_cb(__u64 i, void *ctx)
{
	sink += trace[i & N_MASK];
	return 0;
}

static long base_pop_cb(__u64 i, void *ctx)
{
	out[i & N_MASK] = i;
	return 0;
}

#define COUNT (n < MAX_N ? n : MAX_N)

SEC("tc")
int heap_run(struct __sk_buff *skb)
{
	bpf_loop(COUNT, heap_push_cb, NULL, 0);
	bpf_loop(COUNT, heap_pop_cb, NULL, 0);
	return TC_ACT_OK;
}

SEC("tc")
int rbtree_run(struct __sk_buff *skb)
{
	bpf_loop(COUNT, rb_push_cb, NULL, 0);
	bpf_loop(COUNT, rb_pop_cb, NULL, 0);
	return TC_ACT_OK;
}

SEC("tc")
int rballoc_run(struct __sk_buff *skb)
{
	bpf_loop(COUNT, rb_alloc_cb, NULL, 0);
	bpf_loop(COUNT, base_pop_cb, NULL, 0);
	return TC_ACT_OK;
}

SEC("tc")
int rblock_run(struct __sk_buff *skb)
{
	bpf_loop(COUNT, base_push_cb, NULL, 0);
	bpf_loop(COUNT, rb_lock_cb, NULL, 0);
	return TC_ACT_OK;
}

SEC("tc")
int ffs_run(struct __sk_buff *skb)
{
	bpf_loop(COUNT, ffs_push_cb, NULL, 0);
	bpf_loop(COUNT, ffs_pop_cb, NULL, 0);
	return TC_ACT_OK;
}

SEC("tc")
int base_run(struct __sk_buff *skb)
{
	bpf_loop(COUNT, base_push_cb, NULL, 0);
	bpf_loop(COUNT, base_pop_cb, NULL, 0);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
