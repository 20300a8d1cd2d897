// SPDX-License-Identifier: GPL-2.0
/* tc programs for every tc hook the loader knows (tc, classifier, tcx ingress/egress), each
 * counting into its own slot of tc_hits, plus programs that classify through skb->priority
 * (for HTB under clsact egress) and skb->tc_classid (cls_bpf in direct-action mode under
 * a classful qdisc). */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

enum { HIT_TC, HIT_TCX_INGRESS, HIT_TCX_EGRESS, HIT_CLASSIFIER, HIT_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HIT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} tc_hits SEC(".maps");

/* [0] = class to set (major << 16 | minor), [1] = skb->priority read back, [2] = skb->tc_classid read back */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u32);
} class_cfg SEC(".maps");

static __always_inline int hit(__u32 slot)
{
	__u64 *val = bpf_map_lookup_elem(&tc_hits, &slot);

	if (val)
		__sync_fetch_and_add(val, 1);
	return TC_ACT_OK;
}

SEC("tc")
int tc_count(struct __sk_buff *skb)
{
	return hit(HIT_TC);
}

SEC("tcx/ingress")
int tcx_ingress_count(struct __sk_buff *skb)
{
	return hit(HIT_TCX_INGRESS);
}

SEC("tcx/egress")
int tcx_egress_count(struct __sk_buff *skb)
{
	return hit(HIT_TCX_EGRESS);
}

SEC("classifier")
int cls_count(struct __sk_buff *skb)
{
	return hit(HIT_CLASSIFIER);
}

static __always_inline void record(__u32 slot, __u32 value)
{
	bpf_map_update_elem(&class_cfg, &slot, &value, BPF_ANY);
}

SEC("tc")
int set_priority(struct __sk_buff *skb)
{
	__u32 zero = 0, *cls = bpf_map_lookup_elem(&class_cfg, &zero);

	if (!cls)
		return TC_ACT_OK;
	skb->priority = *cls;
	record(1, skb->priority);
	return TC_ACT_OK;
}

SEC("tc")
int set_classid(struct __sk_buff *skb)
{
	__u32 zero = 0, *cls = bpf_map_lookup_elem(&class_cfg, &zero);

	if (!cls)
		return TC_ACT_OK;
	skb->tc_classid = *cls;
	record(2, skb->tc_classid);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
