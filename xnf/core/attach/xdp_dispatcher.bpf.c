// SPDX-License-Identifier: GPL-2.0
/* An XDP dispatcher that speaks libxdp's multi-program protocol, version 2
 * (xdp-tools lib/libxdp/protocol.org), so xnf needs no xdp-tools at run time and
 * xdp-loader reads and rebuilds what xnf installs.
 *
 * What libxdp checks, and so what must not change here: the program is called
 * xdp_dispatcher and uses one map, the frozen .rodata holding `conf` (124 bytes,
 * magic 236, version 2); the stubs prog0..prog9 are global functions
 * `int progN(struct xdp_md *)` that component programs replace with freplace
 * (BPF_PROG_TYPE_EXT); each returns XDP_DISPATCHER_RETVAL (31), which every slot's
 * chain-call bitmap includes, so an emptied slot passes the packet on; compat_test
 * and xdp_pass are what libxdp probes the kernel with; xdp_metadata carries the
 * version in BTF for readers that predate the magic.
 *
 * The stubs call bpf_xdp_adjust_tail(ctx, 0), a no-op, as libxdp's newer dispatcher
 * does: kernels from 6.13 refuse to replace a function that does not change packet
 * data with one that does.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define XDP_DISPATCHER_VERSION 2
#define XDP_DISPATCHER_RETVAL 31
#define MAX_DISPATCHER_ACTIONS 10

struct xdp_dispatcher_config {
	__u8 magic;
	__u8 dispatcher_version;
	__u8 num_progs_enabled;
	__u8 is_xdp_frags;
	__u32 chain_call_actions[MAX_DISPATCHER_ACTIONS];
	__u32 run_prios[MAX_DISPATCHER_ACTIONS];
	__u32 program_flags[MAX_DISPATCHER_ACTIONS];
};

/* const: frozen .rodata, so the verifier prunes the slots not enabled;
 * volatile: the compiler must not fold the zeroes written here. */
static volatile const struct xdp_dispatcher_config conf = {};

#define STUB(name)							\
__attribute__((noinline)) int name(struct xdp_md *ctx)			\
{									\
	volatile int ret = XDP_DISPATCHER_RETVAL;			\
									\
	if (!ctx)							\
		return XDP_ABORTED;					\
	bpf_xdp_adjust_tail(ctx, 0);					\
	return ret;							\
}

STUB(prog0)
STUB(prog1)
STUB(prog2)
STUB(prog3)
STUB(prog4)
STUB(prog5)
STUB(prog6)
STUB(prog7)
STUB(prog8)
STUB(prog9)

__attribute__((noinline)) int compat_test(struct xdp_md *ctx)
{
	volatile int ret = XDP_DISPATCHER_RETVAL;

	if (!ctx)
		return XDP_ABORTED;
	return ret;
}

#define SLOT(i, fn)							\
	if (num_progs_enabled < (i) + 1)				\
		goto out;						\
	ret = fn(ctx);							\
	if (!((1U << ret) & conf.chain_call_actions[i]))		\
		return ret;

SEC("xdp")
int xdp_dispatcher(struct xdp_md *ctx)
{
	__u8 num_progs_enabled = conf.num_progs_enabled;
	int ret;

	SLOT(0, prog0)
	SLOT(1, prog1)
	SLOT(2, prog2)
	SLOT(3, prog3)
	SLOT(4, prog4)
	SLOT(5, prog5)
	SLOT(6, prog6)
	SLOT(7, prog7)
	SLOT(8, prog8)
	SLOT(9, prog9)
	/* keeps compat_test in the program, as a target for libxdp's probe */
	if (num_progs_enabled < MAX_DISPATCHER_ACTIONS + 1)
		goto out;
	ret = compat_test(ctx);
out:
	return XDP_PASS;
}

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
__uint(dispatcher_version, XDP_DISPATCHER_VERSION) SEC("xdp_metadata");
