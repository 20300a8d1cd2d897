// SPDX-License-Identifier: GPL-2.0
/* tc egress classifier for pifo_sched's BPF qdisc: a packet whose destination (else
 * source) TCP/UDP port is configured gets that port's flow number in skb->mark, which
 * the qdisc reads as the flow (xnf_qdisc.h, flows by mark). tcx egress runs before the
 * root qdisc's enqueue, so `--weights PORT=W` means the same on the BPF qdisc as on
 * the HTB path. Other packets keep their mark (flow 0 unless something else set it). */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);   /* port, host order */
	__type(value, __u32); /* flow number, 1..63 */
} port_flows SEC(".maps");

SEC("tc")
int port_flows_egress(struct __sk_buff *skb)
{
	__u16 proto = bpf_ntohs(skb->protocol), ports[2];
	__u32 l4, *flow;
	__u8 vihl, l4proto;

	if (proto == ETH_P_IP) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN, &vihl, 1) ||
		    bpf_skb_load_bytes(skb, ETH_HLEN + 9, &l4proto, 1))
			return TC_ACT_OK;
		l4 = ETH_HLEN + (vihl & 0x0f) * 4;
	} else if (proto == ETH_P_IPV6) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN + 6, &l4proto, 1))
			return TC_ACT_OK;
		l4 = ETH_HLEN + 40;
	} else {
		return TC_ACT_OK;
	}
	if ((l4proto != IPPROTO_TCP && l4proto != IPPROTO_UDP) || bpf_skb_load_bytes(skb, l4, ports, sizeof(ports)))
		return TC_ACT_OK;
	ports[0] = bpf_ntohs(ports[1]);
	flow = bpf_map_lookup_elem(&port_flows, &ports[0]);
	if (!flow) {
		if (bpf_skb_load_bytes(skb, l4, ports, sizeof(ports)))
			return TC_ACT_OK;
		ports[0] = bpf_ntohs(ports[0]);
		flow = bpf_map_lookup_elem(&port_flows, &ports[0]);
	}
	if (flow)
		skb->mark = *flow;
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
