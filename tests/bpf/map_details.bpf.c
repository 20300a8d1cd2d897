// SPDX-License-Identifier: GPL-2.0
/* Map details libbpf takes care of: a ring buffer whose max_entries (5000) is no page
 * multiple (created as 8192, the next power-of-two number of pages), map kinds whose
 * kernel code refuses BTF key/value types although the source gives them (sockmap,
 * sockhash, devmap, devmap_hash, cpumap, xskmap, prog array, queue: created without BTF
 * at the first try), a bloom filter's number of hashes (map_extra), and
 * global data read and written after load (mapped .bss/.data). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 5000);
} odd_ringbuf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} sock_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} devs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} dev_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CPUMAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} cpus SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 8);
	__type(value, __u32);
} queue SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__uint(max_entries, 32);
	__type(value, __u64);
	__uint(map_extra, 5);		/* hash functions */
} bloom5 SEC(".maps");

__u64 md_runs;
__u64 md_limit = 3;

SEC("xdp")
int map_details_prog(struct xdp_md *ctx)
{
	__u32 key = 0;

	md_runs += 1;
	if (md_runs > md_limit)
		return XDP_DROP;
	bpf_map_lookup_elem(&devs, &key);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
