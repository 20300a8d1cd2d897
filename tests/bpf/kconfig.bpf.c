// SPDX-License-Identifier: GPL-2.0
/* .kconfig externs resolved from the running kernel: LINUX_KERNEL_VERSION, an int
 * (CONFIG_HZ), a bool (CONFIG_BPF_SYSCALL) and a weak one no kernel has (must be 0).
 * The program copies them into .bss. */
#include <stdbool.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern int CONFIG_HZ __kconfig;
extern bool CONFIG_BPF_SYSCALL __kconfig;
extern int CONFIG_XNF_NO_SUCH_OPTION __kconfig __weak;

__u64 kc_version;
__u64 kc_hz;
__u64 kc_bpf_syscall;
__u64 kc_missing = 12345;

SEC("xdp")
int kconfig_prog(struct xdp_md *ctx)
{
	kc_version = LINUX_KERNEL_VERSION;
	kc_hz = CONFIG_HZ;
	kc_bpf_syscall = CONFIG_BPF_SYSCALL;
	kc_missing = CONFIG_XNF_NO_SUCH_OPTION;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
