// SPDX-License-Identifier: GPL-2.0
/* Global data in every section kind the loader turns into an internal array map:
 * .rodata (set from Python before load, then frozen), .data, .bss, .data.custom and
 * .rodata.custom, with both global and static variables and an access at an offset
 * into an array. The program's verdict is the .rodata constant cfg_verdict. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

volatile const __u32 cfg_verdict = XDP_PASS;	/* .rodata */
volatile const __u64 cfg_scale = 1;		/* .rodata */

__u64 counter = 100;				/* .data */
__u32 data_array[4] = { 1, 2, 3, 4 };		/* .data, read at offset 8 */

__u64 bss_result;				/* .bss */
__u32 bss_verdict;				/* .bss */
static __u64 bss_runs;				/* .bss, static: relocated via the section symbol */

__u64 custom_data SEC(".data.custom") = 7;
volatile const __u64 custom_ro SEC(".rodata.custom") = 11;

SEC("xdp")
int global_data_prog(struct xdp_md *ctx)
{
	counter += 1;
	bss_runs += 1;
	/* default: 101 * 1 + 3 + 7 + 11 = 122 on the first run */
	bss_result = counter * cfg_scale + data_array[2] + custom_data + custom_ro;
	custom_data += 1;
	bss_verdict = cfg_verdict;
	return cfg_verdict;
}

char LICENSE[] SEC("license") = "GPL";
