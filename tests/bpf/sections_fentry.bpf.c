// SPDX-License-Identifier: GPL-2.0
/* An fentry program: the loader must find its target in the kernel's BTF
 * (attach_btf_id). Kept apart from sections.bpf.c because some kernels refuse fentry
 * programs altogether (BPF_PROG_LOAD fails with EPERM, for bpftool as well). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* bpf_fentry_test1 exists for BPF selftests in every kernel with CONFIG_NET. */
SEC("fentry/bpf_fentry_test1")
int sec_fentry(unsigned long long *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
