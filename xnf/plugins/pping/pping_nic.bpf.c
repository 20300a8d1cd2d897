// SPDX-License-Identifier: GPL-2.0
/* pping's NIC stage for --mode offload (xnf/plugins/pping/offload.py, docs/drivers-and-offload.md).
 *
 * Runs as an offloaded XDP program, so it follows the NFP rules: no clock, no ring
 * buffer, no global data, no stores into map values. It parses Ethernet, IPv4/IPv6
 * and TCP, keeps only packets that echo a timestamp (ACK with a TCP timestamp option
 * whose TSecr is set) on the configured port, and hands each one to the host through
 * the offload-neutral perf event array with BPF_F_CURRENT_CPU. The host stamps the
 * event when it arrives (perf sample time, CLOCK_MONOTONIC) and matches TSecr against
 * the TSval its own tc egress program timestamped. Every packet passes. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define CFG_PORT 0		/* TCP port to watch (either side), 0 = every port */
#define STAT_PACKETS 0
#define STAT_EVENTS 1

struct nic_event {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
	__u8 family;
	__u8 pad[3];
	__u32 tsval;
	__u32 tsecr;
	__u32 len;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} pping_nic_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} pping_nic_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} pping_nic_events SEC(".maps");

static __always_inline void count(__u32 key)
{
	__u64 *v = bpf_map_lookup_elem(&pping_nic_stats, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* TSval/TSecr from the option layouts stacks send on data and ACK segments:
 * NOP NOP TS (Linux, BSD) or TS first. */
static __always_inline int tcp_timestamps(struct tcphdr *tcp, void *end, __u32 *tsval, __u32 *tsecr)
{
	__u8 *opt = (__u8 *)(tcp + 1);

	if (tcp->doff < 8 || (void *)(opt + 12) > end)
		return -1;
	if (opt[0] == 1 && opt[1] == 1 && opt[2] == 8 && opt[3] == 10) {
		*tsval = *(__u32 *)(opt + 4);
		*tsecr = *(__u32 *)(opt + 8);
		return 0;
	}
	if (opt[0] == 8 && opt[1] == 10) {
		*tsval = *(__u32 *)(opt + 2);
		*tsecr = *(__u32 *)(opt + 6);
		return 0;
	}
	return -1;
}

SEC("xdp")
int pping_nic(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct nic_event ev = {};
	struct tcphdr *tcp;
	__u32 key = CFG_PORT, *port;

	count(STAT_PACKETS);
	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end || ip->ihl != 5 || ip->protocol != IPPROTO_TCP)
			return XDP_PASS;
		ev.family = 4;
		ev.saddr[0] = ip->saddr;
		ev.daddr[0] = ip->daddr;
		tcp = (void *)(ip + 1);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_TCP)
			return XDP_PASS;
		ev.family = 6;
		__builtin_memcpy(ev.saddr, &ip6->saddr, 16);
		__builtin_memcpy(ev.daddr, &ip6->daddr, 16);
		tcp = (void *)(ip6 + 1);
	} else {
		return XDP_PASS;
	}
	if ((void *)(tcp + 1) > end || !tcp->ack)
		return XDP_PASS;
	ev.sport = tcp->source;
	ev.dport = tcp->dest;
	port = bpf_map_lookup_elem(&pping_nic_cfg, &key);
	if (port && *port && *port != bpf_ntohs(ev.sport) && *port != bpf_ntohs(ev.dport))
		return XDP_PASS;
	if (tcp_timestamps(tcp, end, &ev.tsval, &ev.tsecr) || !ev.tsecr)
		return XDP_PASS;
	ev.len = end - data;
	bpf_perf_event_output(ctx, &pping_nic_events, BPF_F_CURRENT_CPU, &ev, sizeof(ev));
	count(STAT_EVENTS);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
