// SPDX-License-Identifier: GPL-2.0
/* Externs resolved from the running kernel, as libbpf resolves them: a typed __ksym
 * (bpf_prog_active, a per-CPU int in vmlinux BTF: ldimm64 BPF_PSEUDO_BTF_ID; the kernel
 * then wants its address from kallsyms, so extern_typed_var needs CONFIG_KALLSYMS_ALL),
 * a kfunc's address (ldimm64 BPF_PSEUDO_BTF_ID of a FUNC: bpf_ksym_exists), untyped ones
 * (const void: an address from /proc/kallsyms; a weak one the kernel lacks is 0), a kfunc
 * (bpf_cast_to_kern_ctx: a call with BPF_PSEUDO_KFUNC_CALL), a weak kfunc the kernel lacks
 * (its address is 0, so the guarded call is dead code; extern_unguarded calls it anyway and
 * must be refused), and libbpf's virtual __kconfig values. Results go to .bss. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>


extern const int bpf_prog_active __ksym;
extern const void bpf_prog_put __ksym;
extern const void xnf_no_such_symbol __ksym __weak;
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;
extern void xnf_no_such_kfunc(void) __ksym __weak;

extern int LINUX_HAS_SYSCALL_WRAPPER __kconfig;
extern int LINUX_HAS_BPF_COOKIE __kconfig;
extern int LINUX_XNF_NO_SUCH_VALUE __kconfig __weak;
extern enum libbpf_tristate CONFIG_BPF_JIT __kconfig;
extern int CONFIG_XNF_NO_SUCH_OPTION __kconfig __weak;

__u64 ext_put_addr, ext_missing_addr = 7, ext_prog_active = 99, ext_kern_ctx, ext_kfunc_exists;
__u64 ext_kfunc_missing = 7, ext_syscall_wrapper = 7, ext_bpf_cookie = 7, ext_linux_missing = 7;
__u64 ext_bpf_jit = 7, ext_config_missing = 7;

SEC("xdp")
int extern_prog(struct xdp_md *ctx)
{
	ext_put_addr = (__u64)&bpf_prog_put;
	ext_missing_addr = (__u64)&xnf_no_such_symbol;
	ext_kern_ctx = bpf_cast_to_kern_ctx(ctx) != 0;
	ext_kfunc_exists = &bpf_cast_to_kern_ctx != 0;
	ext_kfunc_missing = (__u64)&xnf_no_such_kfunc;
	if (&xnf_no_such_kfunc)
		xnf_no_such_kfunc();
	ext_syscall_wrapper = LINUX_HAS_SYSCALL_WRAPPER;
	ext_bpf_cookie = LINUX_HAS_BPF_COOKIE;
	ext_linux_missing = LINUX_XNF_NO_SUCH_VALUE;
	ext_bpf_jit = CONFIG_BPF_JIT;
	ext_config_missing = CONFIG_XNF_NO_SUCH_OPTION;
	return XDP_PASS;
}

SEC("xdp")
int extern_typed_var(struct xdp_md *ctx)
{
	const int *active = bpf_this_cpu_ptr(&bpf_prog_active);

	ext_prog_active = *active;
	return XDP_PASS;
}

SEC("xdp")
int extern_unguarded(struct xdp_md *ctx)
{
	xnf_no_such_kfunc();
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
