// SPDX-License-Identifier: GPL-2.0
/* Same pinned map name as pin_by_name.bpf.c but a 4-byte value: must not reuse that pin. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xnf_pinned_cnt SEC(".maps");

SEC("xdp")
int pin_count_incompat(struct xdp_md *ctx)
{
	__u32 zero = 0, one = 1, *val = bpf_map_lookup_elem(&xnf_pinned_cnt, &zero);

	if (val)
		__sync_fetch_and_add(val, 1);
	else
		bpf_map_update_elem(&xnf_pinned_cnt, &zero, &one, BPF_NOEXIST);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
