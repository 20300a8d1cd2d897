"""The import graph of xnf: layers import only downward, and no cycle, through imports inside
functions too (but the facade's lazy exports; two plugin cycles are listed as not yet mended).

Layers, bottom up (docs/architecture.md): ``xnf.core.errors`` and ``xnf.core.uapi`` (shared);
``xnf.core.object`` (bytes -> spec, never the kernel); ``xnf.core.kernel`` (spec -> live
objects); ``xnf.core.attach``; ``xnf.testing`` (topologies, frames and traffic for tests,
benchmarks and demos); then ``xnf.drivers``, ``xnf.offload``, ``xnf.nf`` and
``xnf.registry``, ``xnf.plugins``, ``xnf.cli``. A module may import its own layer and the
ones below, at module level or inside a function. The top package ``xnf`` is the public
facade: it imports nothing at module level (``import xnf`` stays light) and only plugins
and the CLI call back into it. The other modules directly in ``xnf/core`` are deprecated
paths of moved modules: nothing in xnf imports them.

The graph is read from the source with ``ast`` (nothing is imported), so the test needs
no root and sees imports inside functions too.
"""
import ast
import importlib
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE = os.path.join(ROOT, "xnf")

LAYERS = [
    ("xnf.core", "xnf.core.errors", "xnf.core.uapi"),
    ("xnf.core.object",),
    ("xnf.core.kernel",),
    ("xnf.core.attach",),
    ("xnf.testing",),
    ("xnf.drivers",),
    ("xnf.offload",),
    ("xnf.nf", "xnf.registry"),
    ("xnf.plugins",),
    ("xnf.cli",),
]
FACADE = "xnf"
FACADE_USERS = ("xnf.plugins", "xnf.cli")
# Deprecated path -> where it moved (docs/architecture.md, "Deprecated import paths").
SHIMS = {
    "xnf.core.btf": "xnf.core.object.btf",
    "xnf.core.core_reloc": "xnf.core.object.core_reloc",
    "xnf.core.elf": "xnf.core.object.elf",
    "xnf.core.link": "xnf.core.object.link",
    "xnf.core.spec": "xnf.core.object.spec",
    "xnf.core.fd": "xnf.core.kernel.fd",
    "xnf.core.loader": "xnf.core.kernel.loader",
    "xnf.core.maps": "xnf.core.kernel.maps",
    "xnf.core.netns": "xnf.core.kernel.netns",
    "xnf.core.perfbuf": "xnf.core.kernel.perfbuf",
    "xnf.core.ringbuf": "xnf.core.kernel.ringbuf",
    "xnf.core.syscall": "xnf.core.kernel.syscall",
    "xnf.core.features": "xnf.core.kernel.features",
    "xnf.core.pin": "xnf.core.kernel.pin",
}


def _modules():
    """Module name -> source path, for every module under xnf/."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(PACKAGE):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            if name.endswith(".py"):
                rel = os.path.relpath(os.path.join(dirpath, name), ROOT)[:-3].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                found[".".join(rel)] = os.path.join(dirpath, name)
    return found


MODULES = _modules()


class Edge:
    def __init__(self, src, dst, line, in_function):
        self.src, self.dst, self.line, self.in_function = src, dst, line, in_function

    def __str__(self):
        where = "inside a function" if self.in_function else "at module level"
        return f"{self.src} -> {self.dst} ({os.path.relpath(MODULES[self.src], ROOT)}:{self.line}, {where})"


def _targets(src, node):
    """The xnf modules an import statement loads (``from a import b`` loads a.b if it is a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = src.split(".") if MODULES[src].endswith("__init__.py") else src.split(".")[:-1]
        package = package[:len(package) - (node.level - 1)]
        base = ".".join(package + ([base] if base else []))
    # ``from a import b`` with b a module loads b, and names a, whose __init__ it runs: an edge
    # to each (a package's __init__ that imports b back is a cycle through a)
    return [target for alias in node.names
            for target in ((base, f"{base}.{alias.name}") if f"{base}.{alias.name}" in MODULES else (base,))]


def _edges():
    edges = []
    for src, path in MODULES.items():
        with open(path) as f:
            tree = ast.parse(f.read(), path)

        def visit(node, in_function):
            for child in ast.iter_child_nodes(node):
                inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    for dst in _targets(src, child):
                        if dst == FACADE or dst.startswith(FACADE + "."):
                            edges.append(Edge(src, dst, child.lineno, in_function))
                visit(child, inner)

        visit(tree, False)
    return edges


EDGES = _edges()


def _layer(module):
    """Index in LAYERS of the layer ``module`` belongs to (the longest matching prefix)."""
    best, rank = -1, None
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    return rank


def _packages_run(src, dst):
    """``dst`` and the packages whose ``__init__`` importing it runs (not ``src``'s own)."""
    parts = dst.split(".")
    chain = [".".join(parts[:i]) for i in range(2, len(parts) + 1)]
    return [m for m in chain if m in MODULES and not (src == m or src.startswith(m + "."))] or [dst]


def test_every_module_is_in_a_layer():
    loose = [m for m in MODULES if m != FACADE and m not in SHIMS and _layer(m) is None]
    assert not loose, f"modules in no layer (add them to LAYERS and docs/architecture.md): {loose}"


def test_shims_are_the_only_other_modules_of_core():
    core_level = {m for m in MODULES if m.count(".") == 2 and m.startswith("xnf.core.")
                  and not any(m == p or m.startswith(p + ".") for p in
                              ("xnf.core.object", "xnf.core.kernel", "xnf.core.attach"))}
    assert core_level == {"xnf.core.errors", "xnf.core.uapi"} | set(SHIMS)


def test_no_upward_import():
    upward = []
    for edge in EDGES:
        if edge.src == FACADE or edge.src in SHIMS or edge.dst in SHIMS:
            continue
        if edge.dst == FACADE:
            if not any(edge.src.startswith(p + ".") for p in FACADE_USERS):
                upward.append(f"{edge}: only plugins and the CLI use the facade `xnf`")
            continue
        src, dst = _layer(edge.src), _layer(edge.dst)
        if dst is not None and src is not None and dst > src:
            upward.append(f"{edge}: {LAYERS[src][-1]} sits below {LAYERS[dst][-1]}")
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_nothing_imports_a_deprecated_path():
    found = [f"{e}: import {SHIMS[e.dst]} instead" for e in EDGES if e.dst in SHIMS and e.src not in SHIMS]
    assert not found, "\n".join(found)


def test_facade_imports_nothing_at_module_level():
    found = [str(e) for e in EDGES if e.src == FACADE and not e.in_function]
    assert not found, "`import xnf` must stay light:\n" + "\n".join(found)


def test_no_cycle_among_module_level_imports():
    cycles = _cycles(e for e in EDGES if not e.in_function and e.src not in SHIMS)
    assert not cycles, "import cycles (module level):\n" + "\n".join(f"  {e}" for _, edges in cycles for e in edges)


def _cycles(edges):
    """Each cycle of ``edges`` as (its modules, the edges among them)."""
    graph = {}
    for edge in edges:
        for dst in _packages_run(edge.src, edge.dst):
            if dst != edge.src:
                graph.setdefault(edge.src, {}).setdefault(dst, edge)
    found = []
    for component in _strongly_connected(graph):
        if len(component) > 1:
            members = set(component)
            found.append((frozenset(members), [e for src in sorted(members)
                                               for dst, e in graph.get(src, {}).items() if dst in members]))
    return found


def test_no_cycle_through_imports_inside_functions():
    """A function-level import is for keeping ``import xnf`` light, not for hiding a cycle:
    a module that needs one built on it registers a hook instead (as the XDP dispatcher
    registers its freplace routing with ``attach.xdp``, or is named as data, as pping's
    offload data path is in ``datapath.MODE_MODULES``). The facade's lazy exports are
    left out: only plugins and the CLI call back into it."""
    cycles = _cycles(e for e in EDGES if e.src != FACADE and e.src not in SHIMS)
    assert not cycles, "import cycles (through imports inside functions too):\n" + "\n".join(
        f"  {e}" for _, edges in cycles for e in edges)


def test_xdp_and_its_dispatcher_import_each_other_nowhere():
    xdp, dispatcher = "xnf.core.attach.xdp", "xnf.core.attach.dispatcher"
    assert not [str(e) for e in EDGES if e.src == xdp and e.dst == dispatcher]
    assert [e for e in EDGES if e.src == dispatcher and e.dst == xdp]  # the way round it is built


def test_record_kinds_name_the_modules_that_define_them():
    """base.KIND_MODULES is how a pinned record finds its class without the upper modules
    being imported first: every Attachment subclass of xnf.core.attach is in it."""
    out = _run("""
        import importlib, pkgutil, sys
        import xnf.core.attach as package
        from xnf.core.attach import base, xdp
        assert "xnf.core.attach.dispatcher" not in sys.modules and xdp._extension_attach is None
        assert base._kind("xdp-dispatcher").__module__ == "xnf.core.attach.dispatcher"  # imported to read it
        assert xdp._extension_attach is not None  # and it routes freplace programs from attach_xdp
        for info in pkgutil.iter_modules(package.__path__):
            importlib.import_module("xnf.core.attach." + info.name)
        def subclasses(cls):
            for sub in cls.__subclasses__():
                yield sub
                yield from subclasses(sub)
        found = {c.kind: c.__module__.rsplit(".", 1)[1] for c in subclasses(base.Attachment) if c.kind}
        assert found == base.KIND_MODULES, (found, base.KIND_MODULES)
        print("ok")
    """)
    assert out.rstrip().endswith("ok")


def _strongly_connected(graph):
    """Tarjan's algorithm, iterative (the graph has a few hundred nodes)."""
    index, low, on_stack, stack, result, counter = {}, {}, set(), [], [], [0]
    for root in list(graph):
        if root in index:
            continue
        work = [(root, iter(graph.get(root, {})))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, {}))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    result.append(component)
    return result


def test_the_checker_sees_a_cycle_and_an_upward_import():
    graph = {"a": {"b": None}, "b": {"c": None}, "c": {"a": None}, "d": {"a": None}}
    assert sorted(map(sorted, (c for c in _strongly_connected(graph) if len(c) > 1))) == [["a", "b", "c"]]
    a, b = "xnf.core.attach.dispatcher", "xnf.core.attach.xdp"  # the pair mended: b imported a in a function
    assert [m for m, _ in _cycles([Edge(a, b, 1, False), Edge(b, a, 1, True)])] == [frozenset({a, b})]
    assert _layer("xnf.core.object.elf") < _layer("xnf.core.kernel.loader") < _layer("xnf.core.attach.xdp")
    assert _layer("xnf.core.errors") == 0 and _layer("xnf.plugins.pping.nf") > _layer("xnf.offload.check")


def _run(code):
    res = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def test_importing_every_module_warns_of_no_deprecated_path():
    """In a fresh interpreter: xnf's own imports never go through a deprecated path."""
    out = _run(f"""
        import importlib, warnings
        warnings.filterwarnings("error", message=r"xnf\\..* is deprecated", category=DeprecationWarning)
        for name in {sorted(m for m in MODULES if m not in SHIMS)!r}:
            try:
                importlib.import_module(name)
            except ImportError as e:
                if (e.name or "").split(".")[0] == "xnf":
                    raise
                print("optional dependency missing for", name, e.name)
        print("ok")
    """)
    assert out.rstrip().endswith("ok")


@pytest.mark.parametrize("old", sorted(SHIMS))
def test_deprecated_path_still_imports_and_names_the_new_one(old):
    new = SHIMS[old]
    _run(f"""
        import importlib, sys, types, warnings
        new = importlib.import_module({new!r})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            __import__({old!r})
        mod = sys.modules[{old!r}]
        messages = [str(w.message) for w in caught if w.category is DeprecationWarning]
        assert len(messages) == 1 and {new!r} in messages[0], messages
        assert caught[0].filename == "<string>", caught[0].filename  # stacklevel: the importer's line
        public = [n for n in dir(new) if not n.startswith("_") and not isinstance(getattr(new, n), types.ModuleType)]
        changed = {{"features_report"}} if {old!r} == "xnf.core.features" else set()  # keeps its old signature
        missing = [n for n in public if n not in changed and getattr(mod, n, None) is not getattr(new, n)]
        assert not missing, missing
    """)


def test_deprecated_pin_path_keeps_the_pin_root():
    _run("""
        import warnings
        warnings.simplefilter("ignore")
        from xnf.core.pin import PinRoot, Transaction, checkpoint, write_record, PENDING
        from xnf.core.attach.pinroot import PinRoot as New
        assert PinRoot is New and PENDING == "pending"
        from xnf.core.loader import Program, Collection, load_collection
        from xnf.core.kernel.program import Program as P
        from xnf.core.kernel.collection import Collection as C
        assert Program is P and Collection is C
    """)


def test_pping_mode_table_names_modules_with_their_datapath():
    from xnf.plugins.pping import datapath

    for mode, module in datapath.MODE_MODULES.items():
        cls = importlib.import_module(module).DATAPATH
        assert issubclass(cls, datapath.Datapath) and cls.MODE == mode
