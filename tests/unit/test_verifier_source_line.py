"""VerifierError.source: the C line the verifier stopped in, read from the ``; text @ file:line``
lines the kernel writes from BTF line info (6.x), or ``; text`` alone (older kernels)."""
from xnf.core.errors import VerifierError

LOG_6X = """0: R1=ctx() R10=fp0
; void *data = (void *)(long)ctx->data; @ prog.bpf.c:20
1: (61) r6 = *(u32 *)(r1 +0)
;  @ prog.bpf.c:0
9: (07) r2 += -4
; x = ip->daddr;\t/* oops */ @ prog.bpf.c:32
17: (61) r1 = *(u32 *)(r6 +30)
;  @ prog.bpf.c:0
18: (07) r2 += -4
invalid access to packet, off=30 size=4, R6(id=0,off=30,r=14)
processed 17 insns (limit 1000000) max_states_per_insn 0 total_states 1 peak_states 1 mark_read 0
"""

LOG_OLD = """; int x = ip->daddr;
17: (61) r1 = *(u32 *)(r6 +30)
invalid access to packet, off=30 size=4, R6(id=0,off=30,r=14)
"""


def test_source_from_a_6x_log_skips_compiler_made_line_zero():
    assert VerifierError("p", 13, LOG_6X).source == ("prog.bpf.c", 32, "x = ip->daddr;\t/* oops */")


def test_source_from_an_older_log_has_the_text_alone():
    assert VerifierError("p", 13, LOG_OLD).source == (None, None, "int x = ip->daddr;")


def test_no_line_info_no_source():
    assert VerifierError("p", 13, "0: (95) exit\nR0 !read_ok\n").source is None
    assert VerifierError("p", 13, "").source is None
