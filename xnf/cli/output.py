"""Printing results: aligned tables for people, JSON for programs."""
import json
import sys


def emit_json(data, out=None):
    json.dump(data, out or sys.stdout, indent=2, default=_default)
    (out or sys.stdout).write("\n")


def table(rows, headers, out=None):
    out = out or sys.stdout
    rows = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(), file=out)
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip(), file=out)


def _default(obj):
    if isinstance(obj, bytes):
        return obj.hex()
    if hasattr(obj, "keys"):
        return {k: obj[k] for k in obj.keys()}
    if hasattr(obj, "__attrs_attrs__"):
        # attrs (~14 ms): only when an attrs record is printed as JSON
        import attrs

        return attrs.asdict(obj)
    return str(obj)
