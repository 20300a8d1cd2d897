"""Check a program and its maps against an offload target's rules before anything is loaded.

The device's own verifier would refuse the same program, but only after maps were
created on the device, with a log line such as ``map writes not supported``. This
checker walks the linked instructions first and names the instruction, its source
line (BTF line info) and the rule.

How it works: a forward dataflow analysis over the program's control-flow graph,
tracking for every register (and for 8-byte stack slots, to follow spills) a small
abstract value: a known or unknown scalar, the context, a stack pointer with its
offset, a map, or a pointer into a map value. Paths that meet are joined (a value that
differs between paths becomes unknown; stack offsets that are constant on each path
stay "constant"). bpf-to-bpf calls analyse the callee with the caller's arguments.

Limits (the device's verifier stays the final word):
* no branch refinement: both sides of ``if r0 == 0`` see the same state, so a map value
  pointer is treated as one even before its NULL check (the kernel refuses a store
  through a possibly-NULL pointer anyway);
* only 8-byte spills of registers to constant stack offsets are followed; a pointer
  saved any other way comes back as unknown and stores through it are not checked;
* scalars are tracked as constants only (no ranges), so e.g. multiplication range
  limits of the NFP JIT are not checked;
* firmware capabilities (which helpers a given NFP firmware build implements, map
  sizes, number of maps) are not known before the device is asked.
"""
import attrs

from xnf.core import uapi
from xnf.core.errors import XnfError
from xnf.core.object import insn as I
from xnf.offload import rules as R

VARIES = "varies"
"""A stack offset that is constant on every path but not the same on all of them."""

# ctx offsets that yield packet pointers
_PACKET_FIELDS = {uapi.BPF_PROG_TYPE_XDP: {0: "packet", 4: "packet_end", 8: "packet"},
                  uapi.BPF_PROG_TYPE_SCHED_CLS: {76: "packet", 80: "packet_end", 140: "packet"}}
_ATOMIC_FETCH = 0x01
_ATOMIC_XCHG = 0xE0 | _ATOMIC_FETCH
_ATOMIC_CMPXCHG = 0xF0 | _ATOMIC_FETCH
_MASK64 = (1 << 64) - 1


@attrs.frozen
class Value:
    """Abstract register content: kind in scalar, ctx, stack, map, map_value, packet, packet_end, unknown."""

    kind: str
    const: object = None
    """scalar: its value or None; stack: offset, VARIES or None (variable); map/map_value: map name."""


UNKNOWN = Value("unknown")
SCALAR = Value("scalar")


def _join_value(a, b):
    if a == b:
        return a
    if a.kind == b.kind == "scalar":
        return SCALAR
    if a.kind == b.kind == "stack":
        if a.const is None or b.const is None:
            return Value("stack", None)
        return Value("stack", VARIES)
    if a.kind == b.kind == "map_value":
        return Value("map_value", a.const if a.const == b.const else None)
    if a.kind == b.kind:
        return Value(a.kind)
    return UNKNOWN


@attrs.frozen
class State:
    regs: tuple
    stack: tuple = ()
    """Spilled registers: sorted ((offset, Value), ...)."""
    frame: int = 0
    """0 for the program's own code, 1 and deeper for subprograms."""

    def set(self, reg, value):
        regs = list(self.regs)
        regs[reg] = value
        return attrs.evolve(self, regs=tuple(regs))

    def spill(self, off, value):
        stack = dict(self.stack)
        if value is None:
            stack.pop(off, None)
        else:
            stack[off] = value
        return attrs.evolve(self, stack=tuple(sorted(stack.items(), key=lambda kv: kv[0])))

    def join(self, other):
        regs = tuple(_join_value(a, b) for a, b in zip(self.regs, other.regs))
        mine, theirs = dict(self.stack), dict(other.stack)
        stack = tuple(sorted(((k, v) for k, v in mine.items() if theirs.get(k) == v), key=lambda kv: kv[0]))
        return State(regs, stack, min(self.frame, other.frame))


def entry_state(frame=0, args=None):
    regs = [UNKNOWN] * 11
    regs[1] = Value("ctx")
    if args is not None:
        regs[1:6] = args
    regs[10] = Value("stack", 0)
    return State(tuple(regs), (), frame)


@attrs.frozen
class Violation:
    rule: object
    """The :class:`xnf.offload.rules.Rule` broken."""
    detail: str
    program: str = None
    index: int = None
    """Instruction number as the verifier counts it (``lddw`` takes two)."""
    instruction: str = None
    source: tuple = None
    """``(file, line, col, text)`` from BTF line info, when the object has it."""
    map: str = None

    def describe(self):
        where = []
        if self.program:
            where.append(f"program {self.program!r}")
        if self.index is not None:
            where.append(f"insn {self.index} `{self.instruction}`")
        if self.source:
            file, line, _col, text = self.source
            where.append(f"at {file}:{line}: `{text}`")
        return f"{', '.join(where)}: {self.detail} [rule: {self.rule.name}: {self.rule.why}]"


class OffloadRejected(XnfError):
    """A program or map breaks the offload target's rules; nothing was loaded."""

    def __init__(self, target, violations):
        self.target = target
        self.violations = list(violations)
        first = self.violations[0]
        more = len(self.violations) - 1
        message = (f"cannot offload to {target.name}: {first.describe()}"
                   + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""))
        super().__init__(message, first.rule.fix or None)

    @property
    def rule(self):
        return self.violations[0].rule

    def describe(self):
        """Every violation, one per line."""
        return "\n".join([str(self)] + ["  " + v.describe() for v in self.violations[1:]])


class _Walker:
    """The dataflow analysis of one linked program against one target."""

    def __init__(self, program, target):
        self.p = program
        self.t = target
        self.insns = list(program.instructions)
        self.slot_of, slot = [], 0
        for ins in self.insns:
            self.slot_of.append(slot)
            slot += ins.slots
        self.index_at = {s: i for i, s in enumerate(self.slot_of)}
        self.violations = {}
        self.adjust_head_sites = set()
        self.map_refs = {}

    def report(self, i, rule, detail):
        key = (i, rule.name)
        if key in self.violations:
            return
        slot = self.slot_of[i]
        self.violations[key] = Violation(rule, detail, self.p.name, slot, I.disassemble(self.insns[i]),
                                         self.p.source_line(slot))

    def target_index(self, i, off):
        slot = self.slot_of[i] + self.insns[i].slots + off
        if slot not in self.index_at:
            raise XnfError(f"program {self.p.name!r}: insn {self.slot_of[i]} jumps to slot {slot}, "
                           "which is not an instruction")
        return self.index_at[slot]

    def run(self):
        states = {0: entry_state()}
        work = [0]
        while work:
            i = work.pop()
            if i >= len(self.insns):
                continue
            for nxt, state in self.step(i, states[i]):
                old = states.get(nxt)
                new = state if old is None else old.join(state)
                if new != old:
                    states[nxt] = new
                    work.append(nxt)
        return sorted(self.violations.values(), key=lambda v: v.index)

    # --- transfer functions ----------------------------------------------------------

    def step(self, i, s):
        ins = self.insns[i]
        cls = ins.cls
        if ins.is_exit:
            self.check_exit(i, s)
            return []
        if ins.is_call:
            return self.call(i, s)
        if cls in (I.BPF_JMP, I.BPF_JMP32):
            taken = self.target_index(i, ins.off)
            if ins.code & 0xF0 == I.BPF_JA:
                return [(taken, s)]
            return [(i + 1, s), (taken, s)]
        if cls in (I.BPF_ALU, I.BPF_ALU64):
            return [(i + 1, s.set(ins.dst, self.alu(ins, s)))]
        if ins.is_lddw:
            return [(i + 1, s.set(ins.dst, self.lddw(i, ins)))]
        if cls == I.BPF_LD:  # legacy packet loads: r0 gets the data, r1-r5 are clobbered
            for r in range(1, 6):
                s = s.set(r, UNKNOWN)
            return [(i + 1, s.set(0, SCALAR))]
        if cls == I.BPF_LDX:
            return [(i + 1, s.set(ins.dst, self.load(i, ins, s)))]
        if cls in (I.BPF_ST, I.BPF_STX):
            return [(i + 1, self.store(i, ins, s))]
        return [(i + 1, s)]

    def alu(self, ins, s):
        op, is64 = ins.code & 0xF0, ins.cls == I.BPF_ALU64
        dst = s.regs[ins.dst]
        src = Value("scalar", ins.imm) if not ins.code & I.BPF_X else s.regs[ins.src]
        if op == I.BPF_MOV:
            if is64 or src.kind != "scalar":
                return src if is64 else UNKNOWN
            return Value("scalar", None if src.const is None else src.const & 0xFFFFFFFF)
        if dst.kind in ("stack", "map_value", "packet") and op in (0x00, 0x10) and is64:
            if dst.kind != "stack":
                return dst
            if src.kind != "scalar" or src.const is None or dst.const in (None, VARIES):
                return Value("stack", None if src.kind != "scalar" or src.const is None else dst.const)
            return Value("stack", dst.const + src.const if op == 0x00 else dst.const - src.const)
        if dst.kind == "scalar" and src.kind == "scalar" and dst.const is not None and src.const is not None:
            value = _fold(op, dst.const, src.const)
            if value is not None:
                return Value("scalar", value & (_MASK64 if is64 else 0xFFFFFFFF))
        return SCALAR

    def lddw(self, i, ins):
        ref = ins.reference
        if ref and ref[0] in ("map", "data"):
            self.map_refs.setdefault(ref[1], i)
            return Value("map", ref[1]) if ref[0] == "map" else Value("map_value", ref[1])
        if ins.src in (I.BPF_PSEUDO_MAP_FD, I.BPF_PSEUDO_MAP_IDX):
            return Value("map")
        if ins.src in (I.BPF_PSEUDO_MAP_VALUE, I.BPF_PSEUDO_MAP_IDX_VALUE):
            return Value("map_value")
        if ins.src:
            return UNKNOWN
        return Value("scalar", ins.imm & _MASK64)

    def stack_access(self, i, ptr, what):
        if ptr.const is None and self.t.constant_stack_offsets:
            self.report(i, R.STACK_CONSTANT, f"{what} the stack at an offset computed at run time")

    def load(self, i, ins, s):
        src = s.regs[ins.src]
        if src.kind == "ctx":
            return Value(_PACKET_FIELDS.get(self.p.type, {}).get(ins.off, "scalar"))
        if src.kind == "stack":
            self.stack_access(i, src, "reads")
            if isinstance(src.const, int) and ins.code & 0x18 == I.BPF_DW:
                return dict(s.stack).get(src.const + ins.off, SCALAR)
        return SCALAR

    def store(self, i, ins, s):
        dst = s.regs[ins.dst]
        atomic = ins.cls == I.BPF_STX and ins.code & 0xE0 == I.BPF_ATOMIC
        if atomic:
            self.atomic(i, ins, dst)
            if ins.imm == _ATOMIC_CMPXCHG:
                s = s.set(0, SCALAR)
            elif ins.imm & _ATOMIC_FETCH:
                s = s.set(ins.src, SCALAR)
        elif dst.kind == "map_value" and not self.t.map_value_stores:
            name = f" of map {dst.const!r}" if dst.const else ""
            self.report(i, R.MAP_VALUE_STORE, f"writes into a value{name} in place")
        elif dst.kind == "ctx" and not self.t.ctx_stores:
            self.report(i, R.CTX_STORE, "writes a field of the program context")
        if dst.kind == "stack":
            self.stack_access(i, dst, "writes")
            if isinstance(dst.const, int):
                s = self.spill(s, ins, dst.const + ins.off, atomic)
        return s

    @staticmethod
    def spill(s, ins, off, atomic):
        """Record an 8-byte register spill; forget every slot a store overlaps."""
        size = {I.BPF_W: 4, I.BPF_H: 2, I.BPF_B: 1, I.BPF_DW: 8}[ins.code & 0x18]
        for slot, _ in s.stack:
            if slot < off + size and off < slot + 8:
                s = s.spill(slot, None)
        if ins.cls == I.BPF_STX and not atomic and size == 8:
            s = s.spill(off, s.regs[ins.src])
        return s

    def atomic(self, i, ins, dst):
        if self.t.atomic_ops is not None and ins.imm not in self.t.atomic_ops:
            self.report(i, R.ATOMIC_ADD_ONLY, f"uses atomic operation {ins.imm:#x}")
        if self.t.atomics_only_on_map_values and dst.kind != "map_value":
            self.report(i, R.ATOMIC_ON_MAP_VALUE, f"atomic operation on {_kind_text(dst)}")

    def call(self, i, s):
        ins = self.insns[i]
        after = s
        for r in range(1, 6):
            after = after.set(r, UNKNOWN)
        if ins.is_bpf_to_bpf_call:
            callee = self.target_index(i, ins.imm)
            args = [self.callee_arg(v) for v in s.regs[1:6]]
            return [(callee, entry_state(s.frame + 1, args)), (i + 1, after.set(0, SCALAR))]
        if ins.src == I.BPF_PSEUDO_KFUNC_CALL:
            if not self.t.kfuncs:
                self.report(i, R.KFUNC, f"calls kernel function #{ins.imm}")
            return [(i + 1, after.set(0, SCALAR))]
        return [(i + 1, after.set(0, self.helper(i, ins.imm, s)))]

    @staticmethod
    def callee_arg(value):
        return value if value.kind != "stack" else Value("stack", value.const)

    def helper(self, i, helper_id, s):
        t = self.t
        name = R.helper_name(helper_id)
        if t.allowed_helpers is not None and helper_id not in t.allowed_helpers:
            self.report(i, R.HELPERS, f"calls {name}, which {t.name} does not implement")
        if helper_id in R.MAP_HELPERS and t.stack_helper_args:
            args = [(2, "key")] + ([(3, "value")] if helper_id == uapi.BPF_FUNC_map_update_elem else [])
            for reg, what in args:
                v = s.regs[reg]
                if v.kind != "stack" or v.const is None or (isinstance(v.const, int) and v.const % 4):
                    self.report(i, R.STACK_HELPER_ARGS,
                                f"passes the {what} to {name} from {_kind_text(v)}")
        if helper_id == uapi.BPF_FUNC_perf_event_output and t.perf_event_output_current_cpu_only:
            flags = s.regs[3]
            if flags.kind != "scalar" or flags.const is None \
                    or flags.const & R.BPF_F_INDEX_MASK != R.BPF_F_CURRENT_CPU:
                shown = hex(flags.const) if flags.kind == "scalar" and flags.const is not None else "not a constant"
                self.report(i, R.PERF_CURRENT_CPU, f"calls {name} with flags {shown}")
        if helper_id == uapi.BPF_FUNC_xdp_adjust_head and t.adjust_head_call_sites is not None:
            self.adjust_head_sites.add(i)
            if len(self.adjust_head_sites) > t.adjust_head_call_sites:
                self.report(i, R.ADJUST_HEAD_ONCE, f"calls {name} a second time")
        if helper_id == uapi.BPF_FUNC_map_lookup_elem and s.regs[1].kind == "map":
            return Value("map_value", s.regs[1].const)
        return SCALAR

    def check_exit(self, i, s):
        if s.frame or self.p.type != uapi.BPF_PROG_TYPE_SCHED_CLS or not self.t.tc_return_codes_restricted:
            return
        r0 = s.regs[0]
        if r0.kind != "scalar" or r0.const is None:
            self.report(i, R.TC_RETURN, "returns a value that is not a constant")
        elif not self.t.tc_return_ok(r0.const):
            self.report(i, R.TC_RETURN, f"returns {r0.const}")


def _fold(op, a, b):
    ops = {0x00: lambda: a + b, 0x10: lambda: a - b, 0x20: lambda: a * b, 0x40: lambda: a | b,
           0x50: lambda: a & b, 0x60: lambda: a << (b & 63), 0x70: lambda: a >> (b & 63),
           0xA0: lambda: a ^ b}
    f = ops.get(op)
    return f() if f else None


def _kind_text(v):
    if v.kind == "stack":
        return "the stack at a variable offset" if v.const is None else (
            f"the stack at offset {v.const}" if isinstance(v.const, int) else "the stack")
    return {"map_value": "a map value", "map": "a map", "ctx": "the context", "packet": "packet data",
            "scalar": "a scalar", "packet_end": "the packet end"}.get(v.kind, "a value xnf cannot follow")


def check_program(program, maps, target):
    """Violations of ``target``'s rules by one linked ProgramSpec and the maps it uses."""
    found = []
    if program.type not in target.prog_types:
        found.append(Violation(R.PROG_TYPE, f"is a {program.type_name} program", program.name))
    if program.flags:
        found.append(Violation(R.PROG_FLAGS, f"is loaded with flags {program.flags:#x}", program.name))
    walker = _Walker(program, target)
    found.extend(walker.run())
    for name, i in sorted(walker.map_refs.items(), key=lambda kv: kv[1]):
        if name in maps:
            for v in check_map(maps[name], target):
                slot = walker.slot_of[i]
                found.append(attrs.evolve(v, program=program.name, index=slot,
                                          instruction=I.disassemble(walker.insns[i]),
                                          source=program.source_line(slot)))
    return sorted(found, key=lambda v: -1 if v.index is None else v.index)


def check_map(map_spec, target):
    """Violations of ``target``'s rules by one MapSpec (perf event arrays are always fine)."""
    if map_spec.type in target.neutral_map_types:
        return []
    name = map_spec.name
    if map_spec.type not in target.map_types:
        return [Violation(R.MAP_TYPE, f"map {name!r} is a {map_spec.type_name} map", map=name)]
    found = []
    if map_spec.flags and not target.map_flags_allowed:
        kind = " (global data)" if map_spec.is_data else ""
        found.append(Violation(R.MAP_FLAGS, f"map {name!r}{kind} has flags {map_spec.flags:#x}", map=name))
    if target.max_entries is not None and map_spec.max_entries > target.max_entries:
        found.append(Violation(R.MAX_ENTRIES, f"map {name!r} has {map_spec.max_entries} entries, "
                               f"{target.name} holds at most {target.max_entries}", map=name))
    return found


def check_object(spec, target, programs=None):
    """Raise OffloadRejected naming every violation in ``programs`` (default: all) and every map."""
    names = list(spec.programs) if programs is None else list(programs)
    found, seen_maps = [], set()
    for name in names:
        for v in check_program(spec.programs[name], spec.maps, target):
            found.append(v)
            if v.map:
                seen_maps.add(v.map)
    for name, m in spec.maps.items():
        if name not in seen_maps:
            found.extend(check_map(m, target))
    if found:
        raise OffloadRejected(target, found)
