// SPDX-License-Identifier: GPL-2.0
/* The less common BTF map definition fields: key_size/value_size given as sizes instead of
 * types, map_flags, numa_node (with BPF_F_NUMA_NODE) and map_extra (a bloom filter's number
 * of hash functions). mapdef_prog pushes 42 into the bloom filter and records in
 * mapdef_result whether 42 is then found ([0] = 1) and counts runs in sized_map[7]. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__uint(max_entries, 64);
	__uint(value_size, sizeof(__u32));
	__uint(map_extra, 3);		/* hash functions */
} bloom SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u64));
	__uint(map_flags, BPF_F_NUMA_NODE | BPF_F_NO_PREALLOC);
	__uint(numa_node, 0);
} sized_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
} lru_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} mapdef_result SEC(".maps");

SEC("xdp")
int mapdef_prog(struct xdp_md *ctx)
{
	__u32 zero = 0, seven = 7, value = 42, found;
	__u64 one = 1, *runs;

	bpf_map_push_elem(&bloom, &value, BPF_ANY);
	found = bpf_map_peek_elem(&bloom, &value) == 0;
	bpf_map_update_elem(&mapdef_result, &zero, &found, BPF_ANY);

	runs = bpf_map_lookup_elem(&sized_map, &seven);
	if (runs)
		__sync_fetch_and_add(runs, 1);
	else
		bpf_map_update_elem(&sized_map, &seven, &one, BPF_NOEXIST);
	bpf_map_update_elem(&lru_map, &seven, &value, BPF_ANY);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
