"""`xnf prog load OBJ [--pin DIR]`, `xnf prog show` and `xnf prog core OBJ`: objects and programs in the kernel."""
import os

from xnf.cli.output import emit_json, table
from xnf.core.errors import BPFError, PinError, XnfError


def register(sub):
    p = sub.add_parser("prog", help="load BPF objects and list loaded programs")
    psub = p.add_subparsers(dest="prog_command", metavar="ACTION", parser_class=type(p))
    psub.required = True
    q = psub.add_parser("load", help="load every map and program of an object (like bpftool prog loadall)")
    q.add_argument("object", metavar="OBJ", help="a BPF object file (clang -target bpf)")
    q.add_argument("--pin", metavar="DIR", help="pin programs and maps under DIR (on bpffs) so they stay loaded")
    q.add_argument("-j", "--json", action="store_true", help="what was loaded as JSON")
    q.set_defaults(func=cmd_load)
    q = psub.add_parser("show", help="list programs loaded in the kernel")
    q.add_argument("-j", "--json", action="store_true", help="one JSON object per program, in a list")
    q.set_defaults(func=cmd_show)
    q = psub.add_parser("core", help="explain each CO-RE relocation of an object: how it resolves here, "
                                     "or why it is poisoned (loads nothing, needs no root)")
    q.add_argument("object", metavar="OBJ", help="a BPF object file (clang -target bpf)")
    q.add_argument("--target-btf", metavar="FILE", help="relocate against this BTF file instead of the running "
                                                        "kernel's (/sys/kernel/btf/vmlinux and modules)")
    q.add_argument("-j", "--json", action="store_true", help="each relocation and its resolution as JSON")
    q.set_defaults(func=cmd_core)


def cmd_load(args):
    # every `xnf` command imports this module; loaded only when this one runs
    import xnf
    from xnf.core import uapi

    spec = xnf.open_object(args.object)
    if args.pin:
        # every `xnf` command imports this module; loaded only when this one runs
        from xnf.core.kernel.pin import require_bpffs

        require_bpffs(args.pin)  # before anything exists: a refusal leaves nothing behind
    coll = xnf.load(spec)
    pinned, created = [], []
    try:
        if args.pin:
            _make_dirs(args.pin, created)
            for kind, objs in (("progs", coll.programs), ("maps", coll.maps)):
                base = os.path.join(args.pin, kind)
                _make_dirs(base, created)
                for name, obj in objs.items():
                    if getattr(obj, "pinned_at", None):
                        continue
                    path = os.path.join(base, name.replace(".", "_").lstrip("_"))  # bpffs refuses dots
                    obj.pin(path)
                    pinned.append(path)
        progs = [{"name": n, "type": uapi.PROG_TYPE_NAMES.get(p.type, p.type), "id": p.id} for n, p in coll.programs.items()]
        maps = [{"name": n, "type": uapi.MAP_TYPE_NAMES.get(m.type, m.type), "id": m.id} for n, m in coll.maps.items()]
    except BaseException:  # whatever failed, undo what this run made (pins keep programs loaded)
        _remove(pinned, created)
        raise
    finally:
        coll.close()
    if args.json:
        emit_json({"programs": progs, "maps": maps, "pinned": args.pin})
    else:
        table([("prog", p["name"], p["type"], p["id"]) for p in progs]
              + [("map", m["name"], m["type"], m["id"]) for m in maps], ["KIND", "NAME", "TYPE", "ID"])
        if args.pin:
            print(f"pinned under {args.pin}")
    return 0


def _make_dirs(path, created):
    """``os.makedirs``, recording each directory it creates (outermost first) in ``created``."""
    missing = []
    path = os.path.abspath(path)
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for d in reversed(missing):
        try:
            os.mkdir(d)
        except OSError as e:
            raise PinError(f"cannot create {d}: {e.strerror}") from None
        created.append(d)


def _remove(pins, dirs):
    """Undo a failed load: only the pins and directories this run made, innermost first.
    A directory that is not empty (someone else pinned into it meanwhile) stays."""
    for path in reversed(pins):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    for d in reversed(dirs):
        try:
            os.rmdir(d)
        except OSError:
            pass


def cmd_show(args):
    # every `xnf` command imports this module; loaded only when this one runs
    from xnf.core import uapi
    from xnf.core.kernel import syscall
    from xnf.core.kernel.info import prog_info

    rows = []
    for prog_id in syscall.iter_ids("prog"):
        try:
            fd = syscall.fd_by_id("prog", prog_id)
        except BPFError:
            continue  # gone since it was listed
        try:
            i = prog_info(fd)
        finally:
            fd.close()
        rows.append({"id": i.id, "type": uapi.PROG_TYPE_NAMES.get(i.type, i.type), "name": i.name,
                     "tag": i.tag, "map_ids": list(i.map_ids), "ifindex": i.ifindex,
                     "verified_insns": i.verified_insns})
    if args.json:
        emit_json(rows)
    else:
        table([(r["id"], r["type"], r["name"], r["tag"], ",".join(map(str, r["map_ids"])) or "-") for r in rows],
              ["ID", "TYPE", "NAME", "TAG", "MAPS"])
    return 0


def cmd_core(args):
    """Exit status 1 when a relocation cannot be resolved at all (loading would fail); poisoned
    relocations are reported but are not failures: they only fail if the verifier reaches them."""
    # every `xnf` command imports this module; loaded only when this one runs
    import xnf
    from xnf.core.object.core_reloc import explain

    resolutions = explain(xnf.open_object(args.object), args.target_btf)
    errors = sum(r.error for r in resolutions)
    if args.json:
        emit_json([r.as_dict() for r in resolutions])
    elif not resolutions:
        print(f"{args.object} has no CO-RE relocations")
    else:
        for r in resolutions:
            print(r.describe())
        poisoned = sum(r.poisoned for r in resolutions)
        print(f"{len(resolutions)} relocations: {len(resolutions) - poisoned - errors} resolved, "
              f"{poisoned} poisoned (fail only if reached), {errors} errors")
    return 1 if errors else 0
