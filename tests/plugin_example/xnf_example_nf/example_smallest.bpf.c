// SPDX-License-Identifier: GPL-2.0
/* example_smallest: smallest packet first, as a rank function of pifo_sched's BPF qdisc.
 *
 * The whole contract is xnf_rank.h: include it, define the rank with XNF_RANK_FUNCTION,
 * compile against its directory, ship `<scheduler name>.bpf.o` beside the source and name
 * it in the scheduler class's `rank_object` (scheduler.py). The object is a complete BPF
 * qdisc (exact PIFO, limit, drops, counters); `xnf attach pifo_sched IFACE --scheduler
 * example_smallest` loads it. Same rule as ExampleSmallestFirst.rank() in Python, so the
 * simulator predicts the kernel's order.
 */
#include "xnf_rank.h"

XNF_RANK_FUNCTION(const struct xnf_pkt *pkt)
{
	return pkt->len;  /* fewer bytes leave first; equal sizes in arrival order */
}
