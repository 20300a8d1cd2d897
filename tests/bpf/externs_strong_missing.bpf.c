// SPDX-License-Identifier: GPL-2.0
/* A strong (not __weak) kfunc the kernel does not have: loading must fail before any
 * kernel object is made, naming the extern. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern void xnf_no_such_kfunc(void) __ksym;

SEC("xdp")
int strong_missing(struct xdp_md *ctx)
{
	xnf_no_such_kfunc();
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
