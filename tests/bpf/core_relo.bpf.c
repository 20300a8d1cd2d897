// SPDX-License-Identifier: GPL-2.0
/* Needs CO-RE: a local task_struct marked preserve_access_index read with BPF_CORE_READ
 * emits field relocations in .BTF.ext, resolved against the kernel's BTF by libbpf
 * (bpftool) and by xnf (xnf.core.core_reloc) alike. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct task_struct {
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

__u64 core_pid;

SEC("raw_tp/sys_enter")
int core_prog(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();

	core_pid = BPF_CORE_READ(task, pid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
