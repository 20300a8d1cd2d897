"""Extern symbols as the object declares them (the ELF and BTF side; values come from
:mod:`xnf.core.kernel.externs`).

``__kconfig`` externs are laid out in a ``.kconfig`` array map; ``__ksym`` ones name kernel
variables (typed: a BTF VAR of the kernel; ``const void``: an address from kallsyms) or
kernel functions (kfuncs). libbpf's rules: ``bpf_object__collect_externs`` and
``find_kcfg_type``.
"""
from xnf.core.errors import BTFError, ELFError
from xnf.core.object import btf as B
from xnf.core.object.spec import Extern

KCFG_UNKNOWN, KCFG_CHAR, KCFG_BOOL, KCFG_INT, KCFG_TRISTATE, KCFG_CHAR_ARR = range(6)


def kcfg_type(btf, type_id):
    """(kind, signed) of a ``__kconfig`` extern's type, as libbpf's ``find_kcfg_type``."""
    type_id, t = btf.resolve(type_id)
    if t.kind == B.KIND_INT:
        if t.int_encoding & 4:  # BTF_INT_BOOL
            return (KCFG_BOOL if t.size == 1 else KCFG_UNKNOWN), False
        signed = bool(t.int_encoding & 1)
        if t.size == 1:
            return KCFG_CHAR, signed
        if t.size not in (2, 4, 8):
            return KCFG_UNKNOWN, signed
        return KCFG_INT, signed
    if t.kind in (B.KIND_ENUM, B.KIND_ENUM64):
        ok = t.name == "libbpf_tristate" and (t.kind == B.KIND_ENUM64 or t.size == 4)
        return (KCFG_TRISTATE if ok else KCFG_UNKNOWN), False
    if t.kind == B.KIND_ARRAY:
        if t.array[2] and kcfg_type(btf, t.array[0])[0] == KCFG_CHAR:
            return KCFG_CHAR_ARR, False
    return KCFG_UNKNOWN, False


def kconfig_align(btf, type_id, size):
    """Alignment of a ``__kconfig`` value: its element's for arrays, else its size (at most 8)."""
    _, t = btf.resolve(type_id)
    if t.kind == B.KIND_ARRAY:
        return kconfig_align(btf, t.array[0], btf.size_of(t.array[0]))
    return max(1, min(size, 8))


def ksym_externs(btf, sec, path):
    """The ``.ksyms`` DATASEC's externs by name (weakness comes from the ELF symbol)."""
    out = {}
    for entry in sec.members:
        t = btf._type(entry[0])
        if t.kind not in (B.KIND_VAR, B.KIND_FUNC):
            raise ELFError(f"{path}: the .ksyms section lists a {t.kind_name}, not a variable or function")
        type_id = t.type
        if t.kind == B.KIND_VAR:
            type_id, target = btf.resolve(type_id)
            if target.kind == 0:
                type_id = 0  # const void: an untyped ksym, an address from kallsyms
        out[t.name] = Extern(t.name, ".ksyms", entry[0], type_id, is_func=t.kind == B.KIND_FUNC)
    return out


def name_params(btf, proto_id):
    """The kernel wants every parameter of a FUNC's prototype named: libbpf names the
    unnamed ones of a kfunc declaration ``dummy_ksym``."""
    proto = btf._type(proto_id)
    if proto.kind != B.KIND_FUNC_PROTO:
        raise BTFError(f"kfunc prototype [{proto_id}] is a {proto.kind_name}, not a FUNC_PROTO")
    proto.members = [(name or ("dummy_ksym" if type_id else name), type_id) for name, type_id in proto.members]
