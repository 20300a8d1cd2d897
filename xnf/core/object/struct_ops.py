"""struct_ops variables (``SEC(".struct_ops")`` / ``SEC(".struct_ops.link")``) as map specs.

Each variable is a kernel struct of function pointers (``struct tcp_congestion_ops``, ...)
whose pointers are relocated to programs of ``struct_ops/`` sections; it becomes a
``BPF_MAP_TYPE_STRUCT_OPS`` map whose value the loader builds in the kernel's layout
(:mod:`xnf.core.kernel.struct_ops`). libbpf's ``bpf_object__collect_st_ops_relos``.
"""
from xnf.core import uapi
from xnf.core.errors import BTFError, ELFError
from xnf.core.object import btf as B
from xnf.core.object.spec import MapSpec, StructOpsSpec

SECTIONS = (".struct_ops", ".struct_ops.link")


def essential_name(name):
    """``tcp_congestion_ops___v1`` -> ``tcp_congestion_ops``: the kernel's type name."""
    cut = name.find("___")
    return name[:cut] if cut > 0 else name


def read_section(path, btf, section, data, relocs):
    """Map specs of the variables of one struct_ops section.

    ``relocs`` is ``[(offset, function name)]``: each function pointer's program."""
    if btf is None:
        raise ELFError(f"{path}: section {section!r} needs BTF", "compile with -g")
    sec_id = btf.find(section, B.KIND_DATASEC)
    if sec_id is None:
        raise BTFError(f"{path}: no BTF DATASEC for {section}")
    maps = []
    for var_id, off, size in btf[sec_id].members:
        var = btf[var_id]
        type_id, st = btf.resolve(var.type)
        if var.kind != B.KIND_VAR or st.kind != B.KIND_STRUCT:
            raise BTFError(f"{path}: {section} variable {var.name!r} is not a struct")
        if off + size > len(data):
            raise ELFError(f"{path}: struct_ops variable {var.name!r} ends past section {section}")
        ops = StructOpsSpec(type_name=essential_name(st.name), type_id=type_id,
                            data=bytes(data[off:off + size]), link=section.endswith(".link"))
        by_offset = {bit_off // 8: name for name, _t, bit_off, _bf in st.members}
        for r_off, func in relocs:
            if off <= r_off < off + size:
                member = by_offset.get(r_off - off)
                if member is None:
                    raise ELFError(f"{path}: relocation at {section}+{r_off} is on no member of {st.name}")
                ops.programs[member] = func
        maps.append(MapSpec(name=var.name, type=uapi.BPF_MAP_TYPE_STRUCT_OPS, key_size=4, value_size=0,
                            max_entries=1, flags=uapi.BPF_F_LINK if ops.link else 0, section=section,
                            struct_ops=ops))
    return maps
