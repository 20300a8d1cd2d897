"""`xnf map dump PIN|ID`: a map's contents, decoded through its BTF."""
from xnf.cli.output import emit_json
from xnf.core.errors import BPFError, XnfError


def register(sub):
    p = sub.add_parser("map", help="inspect maps")
    msub = p.add_subparsers(dest="map_command", metavar="ACTION", parser_class=type(p))
    msub.required = True
    q = msub.add_parser("dump", help="print every element, decoded from BTF")
    q.add_argument("map", metavar="PIN|ID", help="a pin path on bpffs or a numeric map id")
    q.add_argument("-j", "--json", action="store_true", help="the elements as JSON, decoded from BTF")
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


def as_json(value, codec):
    """``value`` decoded through ``codec`` for JSON: ``char[N]`` as a string, as bpftool shows it."""
    from xnf.core.object.codec import ArrayCodec, CharArrayCodec, StructCodec  # loaded only when this command runs

    if isinstance(codec, CharArrayCodec) and isinstance(value, bytes):
        return char_array_text(value)
    if isinstance(codec, StructCodec) and hasattr(value, "keys"):
        codecs = {name: c for name, c, _off, _bf in codec.members}
        return {k: as_json(value[k], codecs.get(k)) for k in value.keys()}
    if isinstance(codec, ArrayCodec) and isinstance(value, list):
        return [as_json(v, codec.elem) for v in value]
    if isinstance(value, list):  # per-CPU values: one per CPU, each coded by ``codec``
        return [as_json(v, codec) for v in value]
    return value


def char_array_text(raw):
    """The C string in ``raw`` (up to its first NUL) when it is printable text, else ``raw`` as hex."""
    text = raw.split(b"\0", 1)[0]
    if (text or not any(raw)) and all(0x20 <= b < 0x7F for b in text):  # a leading NUL before data: not a string
        return text.decode("ascii")
    return raw.hex()


def cmd_dump(args):
    m = open_map(args.map)
    try:
        items = list(m.items())
    finally:
        m.close()
    if args.json:
        key_codec, value_codec = m.key_codec, m.value_codec
        emit_json([{"key": as_json(k, key_codec), "value": as_json(v, value_codec)} for k, v in items])
    else:
        for k, v in items:
            print(f"{k}: {v}")
        print(f"{len(items)} element(s) in map {m.name!r}")
    return 0
