// SPDX-License-Identifier: GPL-2.0
/* No license section, yet the program calls the GPL-only bpf_trace_printk: the kernel
 * refuses it; the loader must say that a GPL-compatible license is missing. nl_map is
 * there to prove rollback (no map may survive the failed load). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} nl_map SEC(".maps");

SEC("xdp")
int no_license_prog(struct xdp_md *ctx)
{
	char fmt[] = "len %d\n";
	__u32 zero = 0;
	__u64 *val = bpf_map_lookup_elem(&nl_map, &zero);

	if (val)
		*val += 1;
	bpf_trace_printk(fmt, sizeof(fmt), ctx->data_end - ctx->data);
	return XDP_PASS;
}
