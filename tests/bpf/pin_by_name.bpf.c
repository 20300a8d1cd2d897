// SPDX-License-Identifier: GPL-2.0
/* A map pinned by name (LIBBPF_PIN_BY_NAME): a second load reuses the pin and sees the
 * counts of the first. pin_by_name_incompat.bpf.c declares the same name with another
 * value size, which the loader must refuse to reuse. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xnf_pinned_cnt SEC(".maps");

SEC("xdp")
int pin_count(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 one = 1, *val = bpf_map_lookup_elem(&xnf_pinned_cnt, &zero);

	if (val)
		__sync_fetch_and_add(val, 1);
	else
		bpf_map_update_elem(&xnf_pinned_cnt, &zero, &one, BPF_NOEXIST);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
