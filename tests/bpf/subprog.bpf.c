// SPDX-License-Identifier: GPL-2.0
/* bpf-to-bpf calls: a static and a global subprogram in .text (another section than the
 * programs), three programs in one section and one in another sharing them, a subprogram
 * that touches a map and global data at an offset, and bpf_loop with a static callback
 * (whose address is loaded through a BPF_PSEUDO_FUNC ld_imm64). Results land in .bss. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sub_calls SEC(".maps");

__u64 res_add;		/* sub_a: static_add(2, 3) = 5 */
__u64 res_mul;		/* sub_a: global_mul(6, 7) = 42 */
__u64 res_b;		/* sub_b: static_add(10, 20) = 30 */
__u64 res_tc;		/* sub_tc: global_mul(3, 5) = 15 */
__u64 res_loop;		/* sub_loop: sum of 0..9 = 45 */
__u64 loop_calls;	/* callback invocations */
__u64 sub_stats[4];	/* [2] counts bump() calls */

static __noinline __u32 static_add(__u32 a, __u32 b)
{
	return a + b;
}

__noinline int global_mul(int a, int b)
{
	return a * b;
}

/* Touches a map and global data at an offset: shared by every program. */
static __noinline __u64 bump(void)
{
	__u32 zero = 0;
	__u64 *val = bpf_map_lookup_elem(&sub_calls, &zero);

	sub_stats[2] += 1;
	if (!val)
		return 0;
	return __sync_fetch_and_add(val, 1) + 1;
}

struct loop_ctx {
	__u64 sum;
};

static int loop_step(__u32 index, void *data)
{
	struct loop_ctx *lc = data;

	lc->sum += index;
	loop_calls += 1;
	return 0;
}

SEC("xdp")
int sub_a(struct xdp_md *ctx)
{
	res_add = static_add(2, 3);
	res_mul = global_mul(6, 7);
	bump();
	return XDP_PASS;
}

SEC("xdp")
int sub_b(struct xdp_md *ctx)
{
	res_b = static_add(10, 20);
	bump();
	return XDP_PASS;
}

SEC("xdp")
int sub_loop(struct xdp_md *ctx)
{
	struct loop_ctx lc = { .sum = 0 };

	bpf_loop(10, loop_step, &lc, 0);
	res_loop = lc.sum;
	bump();
	return XDP_PASS;
}

SEC("tc")
int sub_tc(struct __sk_buff *skb)
{
	res_tc = global_mul(3, 5);
	bump();
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
