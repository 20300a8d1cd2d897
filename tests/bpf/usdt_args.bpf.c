// SPDX-License-Identifier: GPL-2.0
/* A USDT program reading its probe's arguments through libbpf's usdt.bpf.h
 * (bpf_usdt_arg_cnt, bpf_usdt_arg, bpf_usdt_cookie), which xnf's attach_usdt feeds:
 * every hit writes what it read into `seen`. kprobe_cookie writes the BPF cookie its
 * kprobe was attached with. */
#include <linux/bpf.h>
#include <stdbool.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/usdt.bpf.h>

#define MAX_ARGS 6

struct usdt_seen {
	__u64 hits;
	__s64 arg_cnt;
	__s64 cookie;
	__s64 args[MAX_ARGS];
	__s64 errors[MAX_ARGS];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct usdt_seen);
} seen SEC(".maps");

SEC("usdt")
int usdt_args(struct pt_regs *ctx)
{
	__u32 zero = 0;
	struct usdt_seen *s = bpf_map_lookup_elem(&seen, &zero);
	long value;
	int i;

	if (!s)
		return 0;
	s->hits++;
	s->arg_cnt = bpf_usdt_arg_cnt(ctx);
	s->cookie = bpf_usdt_cookie(ctx);
	for (i = 0; i < MAX_ARGS; i++) {
		value = 0;
		s->errors[i] = bpf_usdt_arg(ctx, i, &value);
		s->args[i] = value;
	}
	return 0;
}

SEC("kprobe")
int kprobe_cookie(struct pt_regs *ctx)
{
	__u32 zero = 0;
	struct usdt_seen *s = bpf_map_lookup_elem(&seen, &zero);

	if (s) {
		s->hits++;
		s->cookie = bpf_get_attach_cookie(ctx);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
