"""bpf-to-bpf linking: append every subprogram a program calls, then fix call offsets.

Each function keeps its own instructions contiguous, so jumps inside it stay valid;
only calls and callback address loads (``BPF_PSEUDO_FUNC``) that cross functions are
rewritten: ``imm = callee_start - (call_slot + 1)``, counted in 8-byte slots.
"""
from xnf.core.errors import LinkError, ObjectLimitError
from xnf.core.object import insn as I


def flatten(functions, entry, max_slots=None):
    """Return (instructions, func_info, line_info, core_relos) of ``entry`` with its callees.

    Instructions that need no change are shared with the functions, not copied: specs
    treat instructions as values and the loader copies any it rewrites.

    ``functions`` maps names to :class:`~xnf.core.object.spec.Function`; instruction
    ``reference`` values of the form ``("func", name)`` mark calls to resolve. A program
    longer than ``max_slots`` is refused before it is built.
    """
    order = [entry]
    seen = {entry}
    i = 0
    while i < len(order):
        fn = functions[order[i]]
        for ins in fn.instructions:
            ref = ins.reference
            if ref and ref[0] == "func":
                callee = ref[1]
                if callee not in functions:
                    raise LinkError(f"{entry}: call to unknown function {callee!r}")
                if callee not in seen:
                    seen.add(callee)
                    order.append(callee)
        i += 1

    starts, slot = {}, 0
    for name in order:
        starts[name] = slot
        slot += I.slot_count(functions[name].instructions)
    if max_slots is not None and slot > max_slots:
        raise ObjectLimitError(f"program {entry!r} links to {slot} instructions with its subprograms; "
                               f"the kernel loads at most {max_slots}", "split the program (tail calls)")

    out, func_info, line_info, core_relos = [], [], [], []
    for name in order:
        fn = functions[name]
        base = starts[name]
        pos = base
        for ins in fn.instructions:
            ref = ins.reference
            if ref and ref[0] == "func":
                ins = I.Instruction(ins.code, ins.dst, ins.src, ins.off, ins.imm, ins.reference)
                ins.imm = starts[ref[1]] - (pos + 1)
                if ins.is_lddw:
                    ins.src = I.BPF_PSEUDO_FUNC
                    ins.imm &= 0xFFFFFFFF  # the upper half of a function address load is 0
                else:
                    ins.src = I.BPF_PSEUDO_CALL
                ins.reference = None
            out.append(ins)
            pos += 2 if ins.code == I.LDDW else 1
        func_info.extend(_rebase(fn.func_info, base))
        line_info.extend(_rebase(fn.line_info, base))
        core_relos.extend(_rebase(fn.core_relos, base))
    return out, func_info, line_info, core_relos


def _rebase(records, base):
    if not base:
        return records
    return [r._replace(insn_off=r.insn_off + base) for r in records]
