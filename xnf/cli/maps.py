"""`xnf map dump PIN|ID`: a map's contents, decoded through its BTF."""
from xnf.cli.output import emit_json
from xnf.core.errors import BPFError, XnfError


def register(sub):
    p = sub.add_parser("map", help="inspect maps")
    msub = p.add_subparsers(dest="map_command", metavar="ACTION", parser_class=type(p))
    msub.required = True
    q = msub.add_parser("dump", help="print every element, decoded from BTF")
    q.add_argument("map", metavar="PIN|ID", help="a pin path on bpffs or a numeric map id")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_dump)


def open_map(ref):
    from xnf.core.kernel.maps import Map  # every `xnf` command imports this module; loaded only when this one runs

    if ref.isdigit():
        try:
            return Map.from_id(int(ref))
        except BPFError as e:
            if e.errno == 2:
                raise XnfError(f"no map with id {ref}", "list maps with `bpftool map` or `xnf prog show`") from None
            raise
    if not ref.startswith("/"):
        raise XnfError(f"{ref!r} is neither a map id nor an absolute pin path",
                       "give a number (see `bpftool map`) or a path under /sys/fs/bpf")
    return Map.from_pin(ref)


def cmd_dump(args):
    m = open_map(args.map)
    try:
        items = list(m.items())
    finally:
        m.close()
    if args.json:
        emit_json([{"key": k, "value": v} for k, v in items])
    else:
        for k, v in items:
            print(f"{k}: {v}")
        print(f"{len(items)} element(s) in map {m.name!r}")
    return 0
