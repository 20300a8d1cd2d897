// SPDX-License-Identifier: GPL-2.0
/* CO-RE without vmlinux.h: local, partial definitions of kernel types marked
 * preserve_access_index, with ___flavour names, so that every relocation kind clang 14
 * emits is resolved against the running kernel's BTF (TYPE_MATCHES needs clang >= 15:
 * the unit tests cover it with hand-made records). Run with BPF_PROG_TEST_RUN, the
 * program reads the calling task (the test's own thread) and stores what it found in
 * .bss, so a test can check the values against os.getpid() and /proc/self/comm. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct task_struct___xnf {
	int pid;
	int tgid;
	char comm[16];
	unsigned int in_execve: 1;	/* a kernel bitfield: read with lshift/rshift relocations */
	struct task_struct___xnf *real_parent;
	long xnf_no_such_field;		/* not in any kernel: exists = 0, reads poisoned */
} __attribute__((preserve_access_index));

struct xnf_no_such_type {
	int x;
} __attribute__((preserve_access_index));

enum bpf_map_type___xnf {
	BPF_MAP_TYPE_RINGBUF___xnf = 99,	/* the kernel's value (27) replaces 99 */
	BPF_MAP_TYPE_XNF_MISSING___xnf = 1000,
};

__u64 core_pid, core_tgid, core_parent_tgid, core_in_execve;
__u64 core_pid_offset, core_comm_size, core_pid_signed, core_pid_exists, core_missing_exists, core_missing_value;
__u64 core_type_exists, core_missing_type_exists, core_type_size, core_local_id, core_kernel_id;
__u64 core_ringbuf_exists, core_ringbuf_value, core_missing_enum_exists;
char core_comm[16];

SEC("raw_tp/sys_enter")
int core_kinds(void *ctx)
{
	struct task_struct___xnf *task = (void *)bpf_get_current_task();

	core_pid = BPF_CORE_READ(task, pid);
	core_tgid = BPF_CORE_READ(task, tgid);
	core_parent_tgid = BPF_CORE_READ(task, real_parent, tgid);
	BPF_CORE_READ_STR_INTO(&core_comm, task, comm);
	core_in_execve = BPF_CORE_READ_BITFIELD_PROBED(task, in_execve);
	core_comm_size = bpf_core_field_size(task->comm);
	core_pid_signed = __builtin_preserve_field_info(task->pid, BPF_FIELD_SIGNED);	/* no macro in libbpf 1.1 */
	core_pid_offset = bpf_core_field_offset(task->pid);
	core_pid_exists = bpf_core_field_exists(task->pid);
	core_missing_exists = bpf_core_field_exists(task->xnf_no_such_field);
	if (bpf_core_field_exists(task->xnf_no_such_field))	/* dead code here: its read is poisoned */
		core_missing_value = BPF_CORE_READ(task, xnf_no_such_field);
	core_type_exists = bpf_core_type_exists(struct task_struct___xnf);
	core_missing_type_exists = bpf_core_type_exists(struct xnf_no_such_type);
	core_type_size = bpf_core_type_size(struct task_struct___xnf);
	core_local_id = bpf_core_type_id_local(struct task_struct___xnf);
	core_kernel_id = bpf_core_type_id_kernel(struct task_struct___xnf);
	core_ringbuf_exists = bpf_core_enum_value_exists(enum bpf_map_type___xnf, BPF_MAP_TYPE_RINGBUF___xnf);
	core_ringbuf_value = bpf_core_enum_value(enum bpf_map_type___xnf, BPF_MAP_TYPE_RINGBUF___xnf);
	core_missing_enum_exists = bpf_core_enum_value_exists(enum bpf_map_type___xnf,
							      BPF_MAP_TYPE_XNF_MISSING___xnf);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
