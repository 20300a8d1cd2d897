// SPDX-License-Identifier: GPL-2.0
/* A relocation no kernel satisfies (a field that does not exist), once guarded by
 * bpf_core_field_exists (dead code: the poisoned instruction is never reached, the
 * program loads) and once not (the verifier reaches the poison call and rejects the
 * program; xnf names the relocation, the C line and the type path). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct task_struct___gone {
	int pid;
	int xnf_field_removed_long_ago;
} __attribute__((preserve_access_index));

__u64 poison_out;

SEC("raw_tp/sys_enter")
int core_guarded(void *ctx)
{
	struct task_struct___gone *task = (void *)bpf_get_current_task();

	if (bpf_core_field_exists(task->xnf_field_removed_long_ago))
		poison_out = BPF_CORE_READ(task, xnf_field_removed_long_ago);
	else
		poison_out = BPF_CORE_READ(task, pid);
	return 0;
}

SEC("raw_tp/sys_enter")
int core_unguarded(void *ctx)
{
	struct task_struct___gone *task = (void *)bpf_get_current_task();

	poison_out = BPF_CORE_READ(task, xnf_field_removed_long_ago);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
