// SPDX-License-Identifier: GPL-2.0
/* Many small programs in one object, shaped like the kernel's sk_lookup and tunnel
 * selftests, for bench/load_real.py: 12 sk_lookup programs that pick a socket from a
 * sockmap or a sockhash, 6 XDP programs that tail-call through a prog array (statically
 * filled), 6 tc programs that count into an array, an sk_skb stream verdict and an sk_msg
 * program redirecting through the sockhash. 26 programs, 5 maps. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} redir_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} redir_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 32);
	__type(key, __u32);
	__type(value, __u64);
} run_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} tail_cfg SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *val = bpf_map_lookup_elem(&run_count, &slot);

	if (val)
		__sync_fetch_and_add(val, 1);
}

/* sk_lookup: select the socket in slot KEY of MAP when the local port matches PORT. */
#define LOOKUP_PROG(name, map, key, port)				\
SEC("sk_lookup")							\
int name(struct bpf_sk_lookup *ctx)					\
{									\
	__u32 k = (key);						\
	struct bpf_sock *sk;						\
	long err;							\
									\
	if (ctx->local_port != (port))					\
		return SK_PASS;						\
	sk = bpf_map_lookup_elem(&map, &k);				\
	if (!sk)							\
		return SK_PASS;						\
	err = bpf_sk_assign(ctx, sk, 0);				\
	bpf_sk_release(sk);						\
	return err ? SK_DROP : SK_PASS;					\
}

LOOKUP_PROG(lookup_map_0, redir_map, 0, 7000)
LOOKUP_PROG(lookup_map_1, redir_map, 1, 7001)
LOOKUP_PROG(lookup_map_2, redir_map, 2, 7002)
LOOKUP_PROG(lookup_map_3, redir_map, 3, 7003)
LOOKUP_PROG(lookup_map_4, redir_map, 4, 7004)
LOOKUP_PROG(lookup_map_5, redir_map, 5, 7005)
LOOKUP_PROG(lookup_hash_0, redir_hash, 0, 8000)
LOOKUP_PROG(lookup_hash_1, redir_hash, 1, 8001)
LOOKUP_PROG(lookup_hash_2, redir_hash, 2, 8002)
LOOKUP_PROG(lookup_hash_3, redir_hash, 3, 8003)
LOOKUP_PROG(lookup_hash_4, redir_hash, 4, 8004)
LOOKUP_PROG(lookup_hash_5, redir_hash, 5, 8005)

/* XDP: the tail-call targets, then the entries that jump through jmp_table. */
#define XDP_LEAF(name, slot, verdict)					\
SEC("xdp")								\
int name(struct xdp_md *ctx)						\
{									\
	count(slot);							\
	return verdict;							\
}

XDP_LEAF(xdp_leaf_drop, 0, XDP_DROP)
XDP_LEAF(xdp_leaf_pass, 1, XDP_PASS)
XDP_LEAF(xdp_leaf_tx, 2, XDP_TX)

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, int (void *));
} jmp_table SEC(".maps") = {
	.values = { [0] = (void *)&xdp_leaf_drop, [1] = (void *)&xdp_leaf_pass, [2] = (void *)&xdp_leaf_tx },
};

#define XDP_ENTRY(name, slot)						\
SEC("xdp")								\
int name(struct xdp_md *ctx)						\
{									\
	__u32 zero = 0, *cfg = bpf_map_lookup_elem(&tail_cfg, &zero);	\
									\
	count(slot);							\
	if (cfg)							\
		bpf_tail_call(ctx, &jmp_table, *cfg);			\
	return XDP_PASS;						\
}

XDP_ENTRY(xdp_entry_0, 3)
XDP_ENTRY(xdp_entry_1, 4)
XDP_ENTRY(xdp_entry_2, 5)

/* tc: a decap/encap-shaped check of the protocol, counted per program. */
#define TC_PROG(name, slot, proto)					\
SEC("tc")								\
int name(struct __sk_buff *skb)						\
{									\
	if (skb->protocol != __builtin_bswap16(proto))			\
		return TC_ACT_OK;					\
	count(slot);							\
	return skb->len > 1500 ? TC_ACT_SHOT : TC_ACT_OK;		\
}

TC_PROG(tc_ipip_in, 10, 0x0800)
TC_PROG(tc_ipip_out, 11, 0x0800)
TC_PROG(tc_ip6tnl_in, 12, 0x86dd)
TC_PROG(tc_ip6tnl_out, 13, 0x86dd)
TC_PROG(tc_gre_in, 14, 0x6558)
TC_PROG(tc_gre_out, 15, 0x6558)

SEC("sk_skb/stream_verdict")
int skb_verdict(struct __sk_buff *skb)
{
	__u32 key = 0;

	count(20);
	return bpf_sk_redirect_map(skb, &redir_map, key, 0);
}

SEC("sk_msg")
int msg_verdict(struct sk_msg_md *msg)
{
	__u32 key = msg->local_port & 7;

	count(21);
	return bpf_msg_redirect_hash(msg, &redir_hash, &key, 0);
}

char LICENSE[] SEC("license") = "GPL";
