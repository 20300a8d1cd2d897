"""Regression guard for `xnf run pping`'s start-up (issue 14): the verifier's work on
pping's programs, counted in instructions it processed (``verified_insns`` of the
program's info), a count that does not depend on the machine's speed or load.

The verifier was 0.85 to 1 s of CPU of the start, ~189,000 processed instructions for
each packet program: the TCP option walk, unrolled over packet pointers, was followed
for every mix of option lengths on every path the parser took into it. With the walk in
a global function and the TCP flags read in the rules, each packet program takes
~26,600 with default options (~41,000 with TCP, ICMP and DNS) on Linux 6.18. The bound
is 60,000: room for another kernel's verifier to count somewhat differently (the counts
move by a few percent between releases), far below what a return of the explosion
gives (a single path multiplied by the parser's ~200 ways into it).
"""
import pytest

from xnf.plugins.pping import datapath
from xnf.plugins.pping.config import PpingConfig

pytestmark = pytest.mark.root

BOUND = 60_000
PACKET_PROGRAMS = ("pping_tc_egress", "pping_tc_ingress", "pping_xdp_ingress")


def verified_insns(program):
    return program.info().verified_insns


@pytest.mark.parametrize("config", [PpingConfig(), PpingConfig(tcp=True, icmp=True, dns=True)],
                         ids=["default", "tcp-icmp-dns"])
def test_packet_programs_verify_in_bounded_work(config):
    coll = datapath.load(config)
    try:
        counts = {name: verified_insns(coll.programs[name]) for name in PACKET_PROGRAMS}
    finally:
        coll.close()
    if not all(counts.values()):
        pytest.skip("the kernel does not report verified_insns (Linux 5.16 or newer)")
    assert all(n <= BOUND for n in counts.values()), counts
