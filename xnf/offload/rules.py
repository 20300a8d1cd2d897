"""Offload rules: what a NIC's BPF implementation accepts, one class per target.

The kernel itself (kernel/bpf/offload.c) only offloads XDP and SCHED_CLS programs with
no load flags, and only ARRAY and HASH maps (perf event arrays are offload-neutral:
they stay on the host and the device sends events to them). Each device then adds
its own limits; these classes write them down so :mod:`xnf.offload.check` can refuse a
program before anything is loaded, naming the rule. Sources: nfp/bpf/verifier.c,
nfp/bpf/offload.c, netdevsim/bpf.c (Linux 6.1).
"""
import attrs

from xnf.core import uapi
from xnf.core.errors import PluginError
from xnf.core.uapi import (BPF_F_CURRENT_CPU, BPF_F_INDEX_MASK, TC_ACT_QUEUED, TC_ACT_REDIRECT, TC_ACT_SHOT,
                           TC_ACT_STOLEN)

MAP_HELPERS = (uapi.BPF_FUNC_map_lookup_elem, uapi.BPF_FUNC_map_update_elem, uapi.BPF_FUNC_map_delete_elem)

BPF_ADD = 0x00


def helper_name(helper_id):
    name = uapi.HELPER_NAMES.get(helper_id)
    return f"bpf_{name}" if name else f"helper #{helper_id}"


@attrs.frozen
class Rule:
    """One restriction, as the error message names it."""

    name: str
    why: str
    fix: str = ""


PROG_TYPE = Rule("program type", "only XDP and SCHED_CLS (tc) programs can be offloaded",
                 "use an xdp or tc section")
MAP_TYPE = Rule("map types", "offloaded programs may only use ARRAY and HASH maps "
                "(perf event arrays stay on the host)",
                "move other maps (ring buffers, per-CPU, LPM, prog arrays) to a host-side program")
MAP_FLAGS = Rule("map flags", "offloaded maps take no flags (no BPF_F_NO_PREALLOC, no BPF_F_MMAPABLE "
                 "global data, no read-only .rodata)",
                 "drop the flags, and keep configuration in an ARRAY map instead of global variables")
PROG_FLAGS = Rule("no load flags", "offloaded programs are loaded without BPF_F_* flags (no xdp.frags)",
                  "use a plain xdp or tc section")
KFUNC = Rule("no kfuncs", "the device cannot call kernel functions", "drop the kfunc call from the offloaded stage")
HELPERS = Rule("helpers", "the device implements only some helpers",
               "compute the value on the host or drop the call from the offloaded stage")
ADJUST_HEAD_ONCE = Rule("xdp_adjust_head once", "bpf_xdp_adjust_head may be called at one place only",
                        "merge the calls into one")
PERF_CURRENT_CPU = Rule("perf_event_output flags", "bpf_perf_event_output must use BPF_F_CURRENT_CPU "
                        "as flags (the event is delivered where the firmware's message arrives)",
                        "pass BPF_F_CURRENT_CPU as the flags argument")
MAP_VALUE_STORE = Rule("no direct stores into map values", "the device cannot write map values in place",
                       "update the value with bpf_map_update_elem() or count with __sync_fetch_and_add()")
ATOMIC_ADD_ONLY = Rule("atomic add only", "the only atomic operation is a plain add (no fetch, "
                       "and, or, xor, xchg, cmpxchg)", "use __sync_fetch_and_add() without using its result")
ATOMIC_ON_MAP_VALUE = Rule("atomics on map values", "atomic add must target a map value",
                           "keep counters in an ARRAY or HASH map value")
STACK_CONSTANT = Rule("constant stack offsets", "stack accesses must use offsets known when loading",
                      "index stack arrays with constants, or move the array into a map value")
STACK_HELPER_ARGS = Rule("helper arguments on the stack", "map keys and values passed to helpers must "
                         "be on the stack at a constant, 4-byte aligned offset",
                         "copy the key or value into a local variable first")
CTX_STORE = Rule("no stores to the context", "the program may not write fields of its context",
                 "")
TC_RETURN = Rule("tc return codes", "an offloaded tc program must return a constant TC_ACT_SHOT, "
                 "TC_ACT_STOLEN or TC_ACT_QUEUED (or a value above TC_ACT_REDIRECT)",
                 "return TC_ACT_SHOT for drops; packets to keep need a host-side program")
MAX_ENTRIES = Rule("map size", "the device holds only small maps", "lower max_entries")


class OffloadTarget:
    """The kernel's own offload rules, which every device inherits."""

    name = "generic"
    description = "any device with a BPF offload implementation (kernel rules only)"
    prog_types = frozenset({uapi.BPF_PROG_TYPE_XDP, uapi.BPF_PROG_TYPE_SCHED_CLS})
    map_types = frozenset({uapi.BPF_MAP_TYPE_ARRAY, uapi.BPF_MAP_TYPE_HASH})
    neutral_map_types = frozenset({uapi.BPF_MAP_TYPE_PERF_EVENT_ARRAY})
    map_flags_allowed = False
    max_entries = None
    """Largest max_entries the device accepts; None: no fixed limit."""
    kfuncs = True
    allowed_helpers = None
    """Helper ids the device implements; None: whatever the program type allows."""
    adjust_head_call_sites = None
    perf_event_output_current_cpu_only = False
    map_value_stores = True
    atomic_ops = None
    """Atomic operation codes (insn imm) accepted; None: all."""
    atomics_only_on_map_values = False
    constant_stack_offsets = False
    stack_helper_args = False
    ctx_stores = True
    tc_return_codes_restricted = False

    def tc_return_ok(self, code):
        if not self.tc_return_codes_restricted:
            return True
        return code > TC_ACT_REDIRECT or code in (TC_ACT_SHOT, TC_ACT_STOLEN, TC_ACT_QUEUED)

    def __repr__(self):
        return f"<offload target {self.name}>"


class NetdevsimTarget(OffloadTarget):
    """netdevsim (drivers/net/netdevsim/bpf.c): kernel rules, maps of at most 2 entries."""

    name = "netdevsim"
    description = "the kernel's simulated offload device (tests)"
    max_entries = 2


class NfpTarget(OffloadTarget):
    """Netronome NFP (drivers/net/ethernet/netronome/nfp/bpf/verifier.c)."""

    name = "nfp"
    description = "Netronome Agilio SmartNIC with the BPF firmware"
    allowed_helpers = frozenset(MAP_HELPERS + (uapi.BPF_FUNC_xdp_adjust_head, uapi.BPF_FUNC_xdp_adjust_tail,
                                               uapi.BPF_FUNC_get_prandom_u32, uapi.BPF_FUNC_perf_event_output))
    kfuncs = False
    adjust_head_call_sites = 1
    perf_event_output_current_cpu_only = True
    map_value_stores = False
    atomic_ops = frozenset({BPF_ADD})
    atomics_only_on_map_values = True
    constant_stack_offsets = True
    stack_helper_args = True
    ctx_stores = False
    tc_return_codes_restricted = True


TARGETS = {t.name: t for t in (OffloadTarget, NetdevsimTarget, NfpTarget)}


def target(name):
    """The rule set called ``name`` (as driver profiles name it), as an instance."""
    try:
        return TARGETS[name]()
    except KeyError:
        raise PluginError(f"no offload rules for target {name!r}",
                          f"known targets: {', '.join(sorted(TARGETS))}") from None
