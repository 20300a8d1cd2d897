// SPDX-License-Identifier: GPL-2.0
/* pifo_sched's built-in BPF qdisc: FIFO, strict priority, EDT and DRR as rank functions
 * (rank mode), STFQ, WFQ, HPFQ (tree mode), WF2Q+, SRPT and LSTF (flows mode) and SP-PIFO
 * in their modes; see xnf_qdisc.h and bpf_qdisc.py, which fills the configuration. */
#include "xnf_rank.h"

#define XNF_RANK_FIFO 0
#define XNF_RANK_SP 1
#define XNF_RANK_EDT 2
#define XNF_RANK_DRR 3
#define XNF_EDT_HORIZON_NS (10ULL * 1000000000)  /* a tstamp further ahead is not a departure time */

const volatile __u32 cfg_rank = XNF_RANK_FIFO;
const volatile __u32 cfg_bands = 8;

/* algorithms/fifo.py: every rank 0; strict_priority.py: the band, from the flow's
 * configured band or else skb->priority, clamped to 0..bands-1; edt.py: the departure
 * time max(now, the flow's pacing time, skb->tstamp), the flow's pacing time moving on by
 * the packet's time at the flow's rate (cost_num / cost_den ns per byte; 0: unpaced). */
XNF_RANK_FUNCTION(const struct xnf_pkt *pkt)
{
	__u32 band;

	if (cfg_rank == XNF_RANK_FIFO)
		return 0;
	if (cfg_rank == XNF_RANK_DRR) {  /* drr.py: the round the packet falls into */
		struct xnf_child *c = &ch[pkt->flow & (XNF_MAX_FLOWS - 1)];
		__u64 quantum = c->cost_num ? c->cost_num : 1, rank = c->start, credit = c->finish, k;

		/* c->start is the flow's round + 1 (0: none yet), c->finish its credit */
		if (!c->start || rank - 1 < root_rank) {  /* idle flows keep no deficit */
			rank = root_rank + 1;
			credit = quantum;
		}
		if (pkt->len > credit) {
			k = (pkt->len - credit + quantum - 1) / quantum;
			rank += k;
			credit += k * quantum;
		}
		c->start = rank;
		c->finish = credit - pkt->len;
		return rank - 1;
	}
	if (cfg_rank == XNF_RANK_EDT) {
		struct xnf_child *c = &ch[pkt->flow & (XNF_MAX_FLOWS - 1)];
		__u64 when = pkt->now > c->finish ? pkt->now : c->finish;

		if (pkt->tstamp > when && pkt->tstamp < pkt->now + XNF_EDT_HORIZON_NS)
			when = pkt->tstamp;
		if (c->cost_num && c->cost_den)
			c->finish = when + (pkt->len * c->cost_num + c->cost_den - 1) / c->cost_den;
		return when;
	}
	band = ch[pkt->flow & (XNF_MAX_FLOWS - 1)].band;
	if (band == XNF_NONE)
		band = pkt->priority;
	return band < cfg_bands ? band : cfg_bands - 1;
}
