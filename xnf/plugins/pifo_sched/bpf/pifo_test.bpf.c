// SPDX-License-Identifier: GPL-2.0
/* Drives the BPF PIFO of pifo.h through BPF_PROG_TEST_RUN.
 *
 * pifo_ops: Python writes an operation sequence (enqueue rank+value, or dequeue) and
 * the count into `nops`; one run applies them all through bpf_loop and records every
 * result in `results`, which Python compares with the reference BucketedPifo.
 * pifo_bench: one enqueue and one dequeue per run on a pre-filled queue, so the
 * runner's ns per run is the cost of an enqueue+dequeue pair; pifo_empty is the
 * same program without the PIFO, for the harness overhead.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "pifo.h"

#define MAX_OPS (1 << 17)
#define OP_ENQUEUE 0
#define OP_DEQUEUE 1

struct op {
	__u32 kind;
	__u32 pad;
	__u64 rank;
	__u64 value;
};

struct result {
	__s64 ret;
	__u64 rank;
	__u64 value;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pifo);
} queue SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_OPS);
	__type(key, __u32);
	__type(value, struct op);
} ops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_OPS);
	__type(key, __u32);
	__type(value, struct result);
} results SEC(".maps");

__u32 nops = 0;
__u64 bench_counter = 0;

struct loop_ctx {
	struct pifo *q;
};

static long apply_op(__u64 i, void *data)
{
	struct pifo *q = ((struct loop_ctx *)data)->q;
	__u32 key = (__u32)i;
	struct op *op = bpf_map_lookup_elem(&ops, &key);
	struct result *res = bpf_map_lookup_elem(&results, &key);

	if (!op || !res)
		return 1;
	if (op->kind == OP_ENQUEUE) {
		res->ret = pifo_enqueue(q, op->rank, op->value);
		res->rank = op->rank;
		res->value = op->value;
	} else {
		res->ret = pifo_dequeue(q, &res->rank, &res->value);
	}
	return 0;
}

SEC("xdp")
int pifo_ops(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct loop_ctx loop = { .q = bpf_map_lookup_elem(&queue, &zero) };

	if (!loop.q)
		return XDP_ABORTED;
	bpf_loop(nops < MAX_OPS ? nops : MAX_OPS, apply_op, &loop, 0);
	return XDP_PASS;
}

SEC("xdp")
int pifo_bench(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct pifo *q = bpf_map_lookup_elem(&queue, &zero);
	__u64 rank, value, n = bench_counter++;

	if (!q)
		return XDP_ABORTED;
	/* spread ranks over half the primary window, never below it */
	if (pifo_enqueue(q, q->base + ((n * 40503) & (PIFO_RANGE / 2 - 1)), n))
		return XDP_DROP;
	if (pifo_dequeue(q, &rank, &value))
		return XDP_DROP;
	return XDP_PASS;
}

SEC("xdp")
int pifo_empty(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct pifo *q = bpf_map_lookup_elem(&queue, &zero);

	if (!q)
		return XDP_ABORTED;
	bench_counter++;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
