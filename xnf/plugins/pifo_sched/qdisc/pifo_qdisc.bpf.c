// SPDX-License-Identifier: GPL-2.0
/* pifo_sched's built-in BPF qdisc: FIFO and strict priority as rank functions (rank
 * mode), STFQ, WFQ and HPFQ (tree mode) and WF2Q+ (its own mode); see xnf_qdisc.h and
 * xnf/plugins/pifo_sched/qdisc/bpf_qdisc.py, which fills the configuration. */
#include "xnf_rank.h"

#define XNF_RANK_FIFO 0
#define XNF_RANK_SP 1

const volatile __u32 cfg_rank = XNF_RANK_FIFO;
const volatile __u32 cfg_bands = 8;

/* algorithms/fifo.py: every rank 0; strict_priority.py: the band, from the flow's
 * configured band or else skb->priority, clamped to 0..bands-1. */
XNF_RANK_FUNCTION(const struct xnf_pkt *pkt)
{
	__u32 band;

	if (cfg_rank == XNF_RANK_FIFO)
		return 0;
	band = ch[pkt->flow & (XNF_MAX_FLOWS - 1)].band;
	if (band == XNF_NONE)
		band = pkt->priority;
	return band < cfg_bands ? band : cfg_bands - 1;
}
