// SPDX-License-Identifier: GPL-2.0
/* Map-in-map: an ARRAY_OF_MAPS and a HASH_OF_MAPS declared with __array(values, ...) and
 * statically initialised with inner maps. mim_lookup reads inner_a through outer_arr[0]
 * and inner_b through outer_hash[1], stores both values in mim_result and returns the
 * first one (the test stores an XDP action there). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} inner_a SEC(".maps"), inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner);
} outer_arr SEC(".maps") = {
	.values = { [0] = &inner_a, [1] = &inner_b },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner);
} outer_hash SEC(".maps") = {
	.values = { [1] = &inner_b },
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} mim_result SEC(".maps");

static __always_inline __u32 read_inner(void *outer, __u32 outer_key)
{
	__u32 zero = 0, *val;
	void *inner = bpf_map_lookup_elem(outer, &outer_key);

	if (!inner)
		return 0xdead;
	val = bpf_map_lookup_elem(inner, &zero);
	return val ? *val : 0xbeef;
}

SEC("xdp")
int mim_lookup(struct xdp_md *ctx)
{
	__u32 k0 = 0, k1 = 1;
	__u32 a = read_inner(&outer_arr, 0);
	__u32 b = read_inner(&outer_hash, 1);

	bpf_map_update_elem(&mim_result, &k0, &a, BPF_ANY);
	bpf_map_update_elem(&mim_result, &k1, &b, BPF_ANY);
	return a <= XDP_REDIRECT ? a : XDP_ABORTED;
}

char LICENSE[] SEC("license") = "GPL";
