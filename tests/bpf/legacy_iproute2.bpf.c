// SPDX-License-Identifier: GPL-2.0
/* iproute2's legacy map format: struct bpf_elf_map in SEC("maps") with a
 * SEC("classifier") program, as `tc filter add ... bpf obj` loads them. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#define PIN_NONE 0

struct bpf_elf_map {
	__u32 type;
	__u32 size_key;
	__u32 size_value;
	__u32 max_elem;
	__u32 flags;
	__u32 id;
	__u32 pinning;
	__u32 inner_id;
	__u32 inner_idx;
};

struct bpf_elf_map SEC("maps") ipr_count = {
	.type = BPF_MAP_TYPE_ARRAY,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u64),
	.max_elem = 2,
	.pinning = PIN_NONE,
};

struct bpf_elf_map SEC("maps") ipr_len = {
	.type = BPF_MAP_TYPE_HASH,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u64),
	.max_elem = 32,
	.pinning = PIN_NONE,
};

SEC("classifier")
int ipr_cls(struct __sk_buff *skb)
{
	__u32 zero = 0, len = skb->len;
	__u64 one = 1, *val;

	val = bpf_map_lookup_elem(&ipr_count, &zero);
	if (val)
		__sync_fetch_and_add(val, 1);
	val = bpf_map_lookup_elem(&ipr_len, &len);
	if (val)
		__sync_fetch_and_add(val, 1);
	else
		bpf_map_update_elem(&ipr_len, &len, &one, BPF_NOEXIST);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
