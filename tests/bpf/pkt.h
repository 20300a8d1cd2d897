/* Shared packet parsing for the test fixtures: find the IPv4 protocol of a frame. */
#ifndef XNF_TEST_PKT_H
#define XNF_TEST_PKT_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>

/* IPv4 protocol number of the frame in [data, data_end), or -1 if it is not IPv4. */
static __always_inline int ipv4_protocol(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end)
		return -1;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return -1;
	return ip->protocol;
}

#endif
