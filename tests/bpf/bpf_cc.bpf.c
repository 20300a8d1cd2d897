// SPDX-License-Identifier: GPL-2.0
/* A TCP congestion control in BPF, registered through a struct_ops link: Reno, as the
 * kernel's tcp_reno but without the "is the flow cwnd-limited" check. Slow start and
 * additive increase call the kernel's own steps (the tcp_slow_start and tcp_cong_avoid_ai
 * kfuncs); ssthresh and undo are computed here. Kernel types are local, partial and
 * preserve_access_index (no vmlinux.h): CO-RE finds the kernel's offsets. Counters in .bss
 * show the BPF code carried the flow. Its flags (a data member, copied into the kernel's
 * struct) make it selectable as a namespace's default. xnf_reno is registered through a BPF link
 * (.struct_ops.link); xnf_reno_legacy, the same programs under another name, through the
 * map update alone (.struct_ops). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct sock;

struct tcp_sock {
	__u32 snd_cwnd;
	__u32 snd_ssthresh;
	__u32 prior_cwnd;
} __attribute__((preserve_access_index));

struct tcp_congestion_ops {
	__u32 (*ssthresh)(struct sock *sk);
	void (*cong_avoid)(struct sock *sk, __u32 ack, __u32 acked);
	__u32 (*undo_cwnd)(struct sock *sk);
	void (*init)(struct sock *sk);
	__u32 flags;
	char name[16];
} __attribute__((preserve_access_index));

#define TCP_CONG_NON_RESTRICTED 0x1	/* selectable in any namespace, by anyone */

extern __u32 tcp_slow_start(struct tcp_sock *tp, __u32 acked) __ksym;
extern void tcp_cong_avoid_ai(struct tcp_sock *tp, __u32 w, __u32 acked) __ksym;

__u64 cc_inits, cc_acks, cc_ssthresh_calls, cc_max_cwnd;

SEC("struct_ops/xnf_reno_init")
void BPF_PROG(xnf_reno_init, struct sock *sk)
{
	cc_inits += 1;
}

SEC("struct_ops/xnf_reno_ssthresh")
__u32 BPF_PROG(xnf_reno_ssthresh, struct sock *sk)
{
	const struct tcp_sock *tp = (struct tcp_sock *)sk;
	__u32 half = tp->snd_cwnd >> 1;

	cc_ssthresh_calls += 1;
	return half > 2 ? half : 2;
}

SEC("struct_ops/xnf_reno_cong_avoid")
void BPF_PROG(xnf_reno_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;

	cc_acks += 1;
	if (tp->snd_cwnd > cc_max_cwnd)
		cc_max_cwnd = tp->snd_cwnd;
	if (tp->snd_cwnd < tp->snd_ssthresh) {
		acked = tcp_slow_start(tp, acked);
		if (!acked)
			return;
	}
	tcp_cong_avoid_ai(tp, tp->snd_cwnd, acked);
}

SEC("struct_ops/xnf_reno_undo_cwnd")
__u32 BPF_PROG(xnf_reno_undo_cwnd, struct sock *sk)
{
	const struct tcp_sock *tp = (struct tcp_sock *)sk;

	return tp->snd_cwnd > tp->prior_cwnd ? tp->snd_cwnd : tp->prior_cwnd;
}

SEC(".struct_ops.link")
struct tcp_congestion_ops xnf_reno = {
	.init = (void *)xnf_reno_init,
	.ssthresh = (void *)xnf_reno_ssthresh,
	.cong_avoid = (void *)xnf_reno_cong_avoid,
	.undo_cwnd = (void *)xnf_reno_undo_cwnd,
	.flags = TCP_CONG_NON_RESTRICTED,
	.name = "xnf_reno",
};

SEC(".struct_ops")
struct tcp_congestion_ops xnf_reno_legacy = {
	.init = (void *)xnf_reno_init,
	.ssthresh = (void *)xnf_reno_ssthresh,
	.cong_avoid = (void *)xnf_reno_cong_avoid,
	.undo_cwnd = (void *)xnf_reno_undo_cwnd,
	.name = "xnf_reno_legacy",
};

char LICENSE[] SEC("license") = "GPL";
