// SPDX-License-Identifier: GPL-2.0
/* Load-time benchmark object: 20 programs (10 XDP, 10 tc) and 20 maps (ARRAY, HASH,
 * PERCPU_ARRAY, LRU_HASH, five of each). Program i counts into maps i and (i + 1) % 20,
 * so every map is referenced and every program has a little real work for the verifier. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAP(name, kind, entries)				\
	struct {						\
		__uint(type, kind);				\
		__uint(max_entries, entries);			\
		__type(key, __u32);				\
		__type(value, __u64);				\
	} name SEC(".maps")

MAP(m0, BPF_MAP_TYPE_ARRAY, 256);
MAP(m1, BPF_MAP_TYPE_HASH, 1024);
MAP(m2, BPF_MAP_TYPE_PERCPU_ARRAY, 256);
MAP(m3, BPF_MAP_TYPE_LRU_HASH, 1024);
MAP(m4, BPF_MAP_TYPE_ARRAY, 256);
MAP(m5, BPF_MAP_TYPE_HASH, 1024);
MAP(m6, BPF_MAP_TYPE_PERCPU_ARRAY, 256);
MAP(m7, BPF_MAP_TYPE_LRU_HASH, 1024);
MAP(m8, BPF_MAP_TYPE_ARRAY, 256);
MAP(m9, BPF_MAP_TYPE_HASH, 1024);
MAP(m10, BPF_MAP_TYPE_PERCPU_ARRAY, 256);
MAP(m11, BPF_MAP_TYPE_LRU_HASH, 1024);
MAP(m12, BPF_MAP_TYPE_ARRAY, 256);
MAP(m13, BPF_MAP_TYPE_HASH, 1024);
MAP(m14, BPF_MAP_TYPE_PERCPU_ARRAY, 256);
MAP(m15, BPF_MAP_TYPE_LRU_HASH, 1024);
MAP(m16, BPF_MAP_TYPE_ARRAY, 256);
MAP(m17, BPF_MAP_TYPE_HASH, 1024);
MAP(m18, BPF_MAP_TYPE_PERCPU_ARRAY, 256);
MAP(m19, BPF_MAP_TYPE_LRU_HASH, 1024);

/* Adds one to map[key], inserting the key into hash maps on first use. */
static __always_inline void count(void *map, __u32 key)
{
	__u64 one = 1, *val = bpf_map_lookup_elem(map, &key);

	if (val)
		__sync_fetch_and_add(val, 1);
	else
		bpf_map_update_elem(map, &key, &one, BPF_NOEXIST);
}

/* Key for the frame: the IPv4 protocol, or 255 for anything else. */
static __always_inline __u32 frame_key(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return 255;
	return ip->protocol;
}

#define XDP_PROG(i, a, b)						\
	SEC("xdp")							\
	int xdp_##i(struct xdp_md *ctx)					\
	{								\
		__u32 k = frame_key((void *)(long)ctx->data,		\
				    (void *)(long)ctx->data_end);	\
		count(&a, k);						\
		count(&b, k ^ i);					\
		return XDP_PASS;					\
	}

#define TC_PROG(i, a, b)						\
	SEC("tc")							\
	int tc_##i(struct __sk_buff *skb)				\
	{								\
		__u32 k = frame_key((void *)(long)skb->data,		\
				    (void *)(long)skb->data_end);	\
		count(&a, k);						\
		count(&b, k ^ i);					\
		return TC_ACT_OK;					\
	}

XDP_PROG(0, m0, m1)
XDP_PROG(1, m1, m2)
XDP_PROG(2, m2, m3)
XDP_PROG(3, m3, m4)
XDP_PROG(4, m4, m5)
XDP_PROG(5, m5, m6)
XDP_PROG(6, m6, m7)
XDP_PROG(7, m7, m8)
XDP_PROG(8, m8, m9)
XDP_PROG(9, m9, m10)
TC_PROG(10, m10, m11)
TC_PROG(11, m11, m12)
TC_PROG(12, m12, m13)
TC_PROG(13, m13, m14)
TC_PROG(14, m14, m15)
TC_PROG(15, m15, m16)
TC_PROG(16, m16, m17)
TC_PROG(17, m17, m18)
TC_PROG(18, m18, m19)
TC_PROG(19, m19, m0)

char LICENSE[] SEC("license") = "GPL";
