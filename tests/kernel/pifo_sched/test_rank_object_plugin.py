"""A plugin's own rank function for the BPF qdisc: found through its scheduler class.

The docs' example plugin (tests/plugin_example, package xnf_example_nf) registers
``example_smallest`` in ``xnf.schedulers``; its class names ``rank_object =
"example_smallest.bpf.o"``, compiled from C that includes xnf_rank.h. Here the package is
made importable with a throwaway dist-info (as tests/unit/pifo_sched/test_sched_cli.py
does), without pip. That the object runs in the qdisc is tested in the VM tier
(tests/vm_qdisc/test_third_party_rank.py); on this kernel (no CONFIG_NET_SCH_BPF) it must
be refused with the reason, and the Python half of the same scheduler still simulates.
"""
import os
import sys
import textwrap

import pytest

from xnf.core.errors import PluginError
from xnf.plugins.pifo_sched import registry
from xnf.plugins.pifo_sched.features import bpf_qdisc_available
from xnf.plugins.pifo_sched.nf import PifoSchedConfig
from xnf.plugins.pifo_sched.packet import Packet

from support.distribution import write_distribution

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
EXAMPLE = os.path.join(ROOT, "tests", "plugin_example")
OBJECT = os.path.join(EXAMPLE, "xnf_example_nf", "example_smallest.bpf.o")


@pytest.fixture
def example_plugin(tmp_path, monkeypatch):
    """The example package on the path with its scheduler entry points (and one broken object)."""
    write_distribution(tmp_path, "xnf-example-nf", "0.1.0", {"xnf.schedulers": {
        "example_fifo": "xnf_example_nf.scheduler:ExampleFifo",
        "example_smallest": "xnf_example_nf.scheduler:ExampleSmallestFirst",
        "example_missing": "q2_missing_rank:Missing"}})
    (tmp_path / "q2_missing_rank.py").write_text(textwrap.dedent('''
        from xnf.plugins.pifo_sched.algorithms.fifo import Fifo

        class Missing(Fifo):
            """A scheduler naming an object it does not ship."""
            rank_object = "missing.bpf.o"
    '''))
    monkeypatch.syspath_prepend(EXAMPLE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in ("q2_missing_rank", "xnf_example_nf.scheduler", "xnf_example_nf"):
        sys.modules.pop(name, None)


def test_the_scheduler_class_names_its_compiled_rank_object(example_plugin):
    assert registry.rank_object("example_smallest") == OBJECT and os.path.isfile(OBJECT)
    assert registry.rank_object("example_fifo") is None  # Python only
    assert registry.rank_object("wfq") is None  # built in: the qdisc's own object runs it
    assert registry.rank_object("no_such_scheduler") is None
    assert registry.rank_objects() == {"example_smallest": OBJECT}  # the broken one is left out
    with pytest.raises(PluginError, match="names rank_object 'missing.bpf.o'") as err:
        registry.rank_object("example_missing")
    assert "ship the compiled .bpf.o" in str(err.value)


def test_the_object_follows_the_contract_a_whole_bpf_qdisc():
    """What xnf_rank.h promises: one Qdisc_ops struct_ops variable `xnf_pifo` whose
    members are the framework's programs (the rank function is inlined into enqueue)."""
    import xnf

    spec = xnf.open_object(OBJECT)
    ops = spec.maps["xnf_pifo"].struct_ops
    assert ops.type_name == "Qdisc_ops"
    assert {"enqueue", "dequeue", "init", "reset", "destroy"} <= set(ops.programs)


def test_the_python_half_simulates_smallest_packet_first(example_plugin):
    sched = registry.create("example_smallest")
    for seq, size in enumerate((1500, 64, 900, 64, 1200)):
        assert sched.enqueue(Packet(flow=seq, size=size, seq=seq), 0)
    order = [(p.size, p.seq) for p in iter(lambda: sched.dequeue(0), None)]
    assert order == [(64, 1), (64, 3), (900, 2), (1200, 4), (1500, 0)]


@pytest.mark.skipif(bpf_qdisc_available(), reason="the kernel has CONFIG_NET_SCH_BPF: the refusal is for kernels "
                                                  "without the BPF qdisc")
def test_without_the_bpf_qdisc_a_rank_object_scheduler_is_refused_with_the_reason(example_plugin):
    with pytest.raises(ValueError, match=r"no BPF qdisc \(CONFIG_NET_SCH_BPF.*xnf sched simulate example_smallest"):
        PifoSchedConfig(scheduler="example_smallest")
    with pytest.raises(ValueError, match="--qdisc htb was asked for"):
        PifoSchedConfig(scheduler="example_smallest", qdisc="htb")
