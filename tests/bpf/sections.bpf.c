// SPDX-License-Identifier: GPL-2.0
/* One program per loadable section kind, for the section-name -> program type / expected
 * attach type table: xdp, xdp.frags, tc, classifier, tcx/ingress, tcx/egress, socket,
 * iter/bpf_map, tracepoint/..., raw_tp/..., plus a "version" section. fentry is in
 * sections_fentry.bpf.c (some kernels refuse fentry programs); freplace and struct_ops,
 * which need a target at load, are in sections_parse_only.bpf.c. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int sec_xdp(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp.frags")
int sec_xdp_frags(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("tc")
int sec_tc(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

SEC("classifier")
int sec_classifier(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

SEC("tcx/ingress")
int sec_tcx_ingress(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

SEC("tcx/egress")
int sec_tcx_egress(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

SEC("socket")
int sec_socket(struct __sk_buff *skb)
{
	return 0;
}

SEC("iter/bpf_map")
int sec_iter_map(void *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int sec_tracepoint(void *ctx)
{
	return 0;
}

SEC("raw_tp/sys_enter")
int sec_raw_tp(void *ctx)
{
	return 0;
}

__u32 _version SEC("version") = 1;
char LICENSE[] SEC("license") = "GPL";
