/* SPDX-License-Identifier: GPL-2.0 */
/* THE contract for a rank function of pifo_sched's BPF qdisc (Linux 6.16+, NET_SCH_BPF).
 *
 * A third-party scheduler that only needs a rank per packet writes one C file:
 *
 *     // mypkg/qdisc/lifo.bpf.c
 *     #include "xnf_rank.h"
 *
 *     static __u64 next = ~0ULL >> 2;
 *
 *     XNF_RANK_FUNCTION(const struct xnf_pkt *pkt)
 *     {
 *             return next--;              // the newest packet gets the lowest rank
 *     }
 *
 * and compiles it against this directory:
 *
 *     clang -O2 -g -target bpf -D__TARGET_ARCH_x86 -I/usr/include/x86_64-linux-gnu \
 *           -I$(python3 -c 'import xnf.plugins.pifo_sched.qdisc as q; print(q.INCLUDE_DIR)') \
 *           -c lifo.bpf.c -o lifo.bpf.o
 *
 * The object is a complete BPF qdisc: an exact PIFO (lowest rank first, arrival order
 * among equal ranks), a packet limit with tail drop, drops and byte/packet counters,
 * and the hold switch and watchdog of the framework (xnf_qdisc.h). Naming convention:
 * the object is found as `<scheduler name>.bpf.o` in the directory the plugin
 * registers (see docs/pifo_sched.md, "Rank functions in the kernel"); its struct_ops
 * variable is `xnf_pifo` and the loader sets the qdisc kind (`.id`) per instance.
 *
 * What the rank function sees (struct xnf_pkt, read-only): the packet's length on the
 * wire, its flow (0..XNF_MAX_FLOWS-1, chosen by the framework: skb->mark, or the
 * configured port map), skb->mark and skb->priority (values a classifier or the sender
 * set, e.g. SRPT's remaining bytes or a deadline), skb->tstamp (EDT), the time now and
 * the packet's arrival number. Return the rank (lower leaves first); XNF_RANK_DROP
 * drops the packet. Ranks are 64-bit and unbounded; equal ranks keep arrival order.
 */
#ifndef XNF_RANK_H
#define XNF_RANK_H

#include "xnf_qdisc_base.h"  /* XNF_MAX_FLOWS (64), the kernel types and kfuncs */

#define XNF_RANK_DROP (~0ULL)

struct xnf_pkt {
	__u32 len;       /* bytes on the wire (skb->len) */
	__u32 flow;      /* 0 .. XNF_MAX_FLOWS-1 */
	__u32 mark;      /* skb->mark */
	__u32 priority;  /* skb->priority */
	__u64 tstamp;    /* skb->tstamp (ns, EDT), 0 if unset */
	__u64 now;       /* bpf_ktime_get_ns() at enqueue */
	__u64 seq;       /* arrival number, from 1 */
};

/* The framework calls xnf_rank() at enqueue; XNF_RANK_FUNCTION defines it. */
static __u64 xnf_rank(const struct xnf_pkt *pkt);
#define XNF_RANK_FUNCTION(arg) static __attribute__((always_inline)) __u64 xnf_rank(arg)

#include "xnf_qdisc.h"

#endif
