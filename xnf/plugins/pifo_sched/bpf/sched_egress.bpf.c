// SPDX-License-Identifier: GPL-2.0
/* tc egress enqueue hook of pifo_sched: ranks real packets, maps ranks to HTB bands.
 *
 * Rank: a virtual-clock fair queueing tag. Each flow (5-tuple) has a finish time; a
 * packet starts at max(now, finish) and finishes len * cost later, where cost is the
 * flow's nanoseconds per byte at its weighted share of the link (cost_q10 from the
 * `weights` map by destination or source port, else the default). Shares are taken
 * of slightly less than the link (user space sets the costs), so every backlogged
 * flow runs ahead of the clock with a tag of its own instead of all being tied at
 * now. len is the length on the wire: a GSO packet counts the headers of each
 * segment, as the qdisc charges it. The rank is the start tag (STFQ) or the finish
 * tag (WFQ) itself, in nanoseconds of CLOCK_MONOTONIC. Idle flows bank no credit: a
 * start never lies in the past.
 *
 * The tags of one flow never decrease, so push-up puts its later packets in the same
 * band as its earlier ones or a lower-priority one, unless other flows moved the
 * bounds in between. A rank taken relative to now falls while a flow waits and sends
 * its next packets ahead of its queued ones; TCP reads that reordering as loss,
 * shrinks its window and leaves its share to the other flows (seen as a 0.09/0.75/
 * 0.17 split of 1:2:3 weights).
 *
 * Band: SP-PIFO over NBANDS strict-priority HTB classes. Scanning from the lowest
 * priority band, the first band whose bound is <= rank takes the packet and its
 * bound becomes the rank (push-up); a rank below every bound goes to band 0 and all
 * bounds drop by the difference (push-down; bounds are signed so they keep their
 * order). skb->priority = MAJOR:MINOR_BASE+band selects the HTB leaf directly. This
 * kernel has no BPF qdisc: HTB holds the packets.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define NBANDS 8

struct sched_config {
	__u64 default_cost_q10; /* ns per byte << 10 for flows without a port weight */
	__u32 mode;             /* 0: start tag (STFQ), 1: finish tag (WFQ) */
	__u32 major;            /* HTB qdisc major handle */
	__u32 minor_base;       /* minor of band 0's class */
	__u32 pad;
};

struct flow_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct flow_state {
	__u64 finish;
	__u64 bytes;
	__u64 packets;
	__u32 band;
	__u16 port; /* the port whose weight applies, 0 for the default */
	__u16 pad;
};

struct sp_state {
	struct bpf_spin_lock lock;
	__u32 pad;
	__s64 bounds[NBANDS]; /* signed: push-down may take them below zero */
};

struct band_stats {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sched_config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u64); /* cost_q10 */
} weights SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct flow_key);
	__type(value, struct flow_state);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sp_state);
} sp SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NBANDS);
	__type(key, __u32);
	__type(value, struct band_stats);
} bands SEC(".maps");

/* 0 with the flow key and the header length up to the L4 payload (for TCP), or -1
 * for anything that is not IPv4/IPv6. */
static __always_inline int parse(struct __sk_buff *skb, struct flow_key *key, __u32 *hdr_len)
{
	__u16 proto = bpf_ntohs(skb->protocol);
	__u32 l4;
	__u8 vihl;

	if (proto == ETH_P_IP) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN, &vihl, 1) ||
		    bpf_skb_load_bytes(skb, ETH_HLEN + 9, &key->proto, 1) ||
		    bpf_skb_load_bytes(skb, ETH_HLEN + 12, key->saddr, 4) ||
		    bpf_skb_load_bytes(skb, ETH_HLEN + 16, key->daddr, 4))
			return -1;
		l4 = ETH_HLEN + (vihl & 0x0f) * 4;
	} else if (proto == ETH_P_IPV6) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN + 6, &key->proto, 1) ||
		    bpf_skb_load_bytes(skb, ETH_HLEN + 8, key->saddr, 16) ||
		    bpf_skb_load_bytes(skb, ETH_HLEN + 24, key->daddr, 16))
			return -1;
		l4 = ETH_HLEN + 40;
	} else {
		return -1;
	}
	if (key->proto == IPPROTO_TCP || key->proto == IPPROTO_UDP) {
		__u16 ports[2];

		if (!bpf_skb_load_bytes(skb, l4, ports, sizeof(ports))) {
			key->sport = bpf_ntohs(ports[0]);
			key->dport = bpf_ntohs(ports[1]);
		}
	}
	*hdr_len = l4 + (key->proto == IPPROTO_UDP ? 8 : 0);
	if (key->proto == IPPROTO_TCP) {
		__u8 doff;

		if (!bpf_skb_load_bytes(skb, l4 + 12, &doff, 1))
			*hdr_len += (doff >> 4) * 4;
	}
	return 0;
}

/* Tag the packet and choose its band under one lock, so the ranks of a flow reach
 * SP-PIFO in increasing order even when two CPUs send for it at once, and no
 * concurrent update of its finish time is lost. */
static __always_inline __u32 rank_and_band(struct flow_state *st, __u64 now, __u64 charge, __u32 mode)
{
	__u32 zero = 0, band = 0;
	struct sp_state *s = bpf_map_lookup_elem(&sp, &zero);
	__u64 start;
	__s64 rank;
	int found = 0;

	if (!s)
		return 0;
	bpf_spin_lock(&s->lock);
	start = st->finish > now ? st->finish : now;
	st->finish = start + charge;
	rank = mode ? st->finish : start;
#pragma unroll
	for (int i = NBANDS - 1; i >= 0; i--) {
		if (!found && rank >= s->bounds[i]) {
			s->bounds[i] = rank; /* push-up */
			band = i;
			found = 1;
		}
	}
	if (!found) {
		__s64 cost = s->bounds[0] - rank; /* push-down */

#pragma unroll
		for (int i = 0; i < NBANDS; i++)
			s->bounds[i] -= cost;
	}
	st->band = band;
	bpf_spin_unlock(&s->lock);
	return band;
}

SEC("tc")
int sched_egress(struct __sk_buff *skb)
{
	__u32 zero = 0, band = 0;
	struct sched_config *cfg = bpf_map_lookup_elem(&config, &zero);
	struct flow_key key = {};
	struct flow_state *st, fresh = {};
	struct band_stats *bs;
	__u64 *cost;
	__u16 port = 0;
	__u32 hdr_len = 0;
	__u64 len = skb->len;

	if (!cfg)
		return TC_ACT_OK;
	if (parse(skb, &key, &hdr_len) == 0) {
		/* a GSO packet leaves as gso_segs packets, each with its own headers, and
		 * the qdisc charges it so: rank by the bytes on the wire */
		if (skb->gso_segs > 1)
			len += (__u64)(skb->gso_segs - 1) * hdr_len;
		cost = bpf_map_lookup_elem(&weights, &key.dport);
		port = key.dport;
		if (!cost) {
			cost = bpf_map_lookup_elem(&weights, &key.sport);
			port = key.sport;
		}
		if (!cost)
			port = 0;
		st = bpf_map_lookup_elem(&flows, &key);
		if (!st) {
			fresh.port = port;
			bpf_map_update_elem(&flows, &key, &fresh, BPF_NOEXIST);
			st = bpf_map_lookup_elem(&flows, &key);
		}
		if (st) {
			band = rank_and_band(st, bpf_ktime_get_ns(),
					     (len * (cost ? *cost : cfg->default_cost_q10)) >> 10, cfg->mode);
			__sync_fetch_and_add(&st->bytes, len);
			__sync_fetch_and_add(&st->packets, 1);
		}
	}
	skb->priority = (cfg->major << 16) | (cfg->minor_base + band);
	bs = bpf_map_lookup_elem(&bands, &band);
	if (bs) {
		bs->packets++;
		bs->bytes += len;
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
