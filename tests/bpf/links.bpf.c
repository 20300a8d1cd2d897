// SPDX-License-Identifier: GPL-2.0
/* One program per link kind of xnf.core.attach.links; each counts its runs in hits[KIND]
 * (only for the test's own process where the hook sees every process), so a test proves
 * its attach fired. iter/task prints "pid tgid" lines with BPF_SEQ_PRINTF. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum { TRACEPOINT, RAW_TP, TP_BTF, FENTRY, KPROBE, KRETPROBE, KSYSCALL, KPROBE_MULTI,
       UPROBE, URETPROBE, USDT, CGROUP_SKB, SK_LOOKUP, SK_MSG, SK_SKB, UPROBE_MULTI, UPROBE_S, CGROUP_SOCK, CGROUP_CONNECT4, NKINDS };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NKINDS);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} socks SEC(".maps");

const volatile __u32 target_tgid;

static __always_inline int count(__u32 kind)
{
	__u64 *n = bpf_map_lookup_elem(&hits, &kind);

	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}

static __always_inline int count_mine(__u32 kind)
{
	if ((bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return 0;
	return count(kind);
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int l_tracepoint(void *ctx) { return count_mine(TRACEPOINT); }

SEC("raw_tp/sys_enter")
int l_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
	return ctx->args[1] == 39 /* __NR_getpid on x86_64 */ ? count_mine(RAW_TP) : 0;
}

SEC("tp_btf/sys_enter")
int l_tp_btf(__u64 *ctx)
{
	return ctx[1] == 39 ? count_mine(TP_BTF) : 0;
}

SEC("fentry/__task_pid_nr_ns")
int l_fentry(void *ctx) { return count_mine(FENTRY); }

SEC("kprobe/__x64_sys_getpid")
int l_kprobe(void *ctx) { return count_mine(KPROBE); }

SEC("kretprobe/__x64_sys_getpid")
int l_kretprobe(void *ctx) { return count_mine(KRETPROBE); }

SEC("ksyscall/getpid")
int l_ksyscall(void *ctx) { return count_mine(KSYSCALL); }

SEC("kprobe.multi/__x64_sys_getpid")
int l_kprobe_multi(void *ctx) { return count_mine(KPROBE_MULTI); }

SEC("uprobe")
int l_uprobe(void *ctx) { return count_mine(UPROBE); }

SEC("uretprobe")
int l_uretprobe(void *ctx) { return count_mine(URETPROBE); }

SEC("uprobe.s")
int l_uprobe_s(void *ctx) { return count_mine(UPROBE_S); }

SEC("uprobe.multi")
int l_uprobe_multi(void *ctx) { return count_mine(UPROBE_MULTI); }

SEC("usdt")  /* attached for one process (the uprobe's pid): counts every run */
int l_usdt(void *ctx) { return count(USDT); }

SEC("cgroup_skb/egress")
int l_cgroup_skb(struct __sk_buff *skb)
{
	count(CGROUP_SKB);
	return 1;
}

SEC("cgroup/sock_create")
int l_cgroup_sock(struct bpf_sock *sk)
{
	count(CGROUP_SOCK);
	return 1;
}

SEC("cgroup/connect4")
int l_cgroup_connect4(struct bpf_sock_addr *ctx)
{
	count(CGROUP_CONNECT4);
	return 1;
}

SEC("sk_lookup")
int l_sk_lookup(struct bpf_sk_lookup *ctx)
{
	count(SK_LOOKUP);
	return SK_PASS;
}

SEC("sk_msg")
int l_sk_msg(struct sk_msg_md *msg)
{
	count(SK_MSG);
	return SK_PASS;
}

SEC("sk_skb/stream_verdict")
int l_sk_skb(struct __sk_buff *skb)
{
	count(SK_SKB);
	return SK_PASS;
}

struct bpf_iter_meta {
	struct seq_file *seq;
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

struct bpf_iter__task {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
} __attribute__((preserve_access_index));

SEC("iter/task")
int l_iter_task(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;

	if (!task)
		return 0;
	BPF_SEQ_PRINTF(ctx->meta->seq, "%d %d\n", task->pid, task->tgid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
