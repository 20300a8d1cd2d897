// SPDX-License-Identifier: GPL-2.0
/* Section kinds that are only parsed for now: freplace needs a target program at load and
 * struct_ops programs are loaded through a struct_ops map (later issue). Loading this
 * object must fail with a typed error, as bpftool fails on it. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("freplace/xnf_target_func")
int sec_freplace(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("struct_ops/xnf_test_op")
int sec_struct_ops(unsigned long long *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
