"""Share an interface's XDP hook with xdp-tools: libxdp's multi-program dispatcher.

An interface runs one XDP program. libxdp (xdp-loader, xdp-filter, ...) makes that
program a *dispatcher* that calls up to ten component programs in turn, each an
freplace (``BPF_PROG_TYPE_EXT``) program linked over one of its stub functions
``prog0``..``prog9``. This module follows libxdp's documented protocol, version 2
(xdp-tools ``lib/libxdp/protocol.org``), so xnf and xdp-tools see and keep each
other's programs:

* **Dispatcher.** An XDP program named ``xdp_dispatcher`` whose only map, the frozen
  ``.rodata``, holds ``struct xdp_dispatcher_config`` (:data:`CONFIG`): magic 236,
  version 2, the number of slots in use, whether it runs with frags, and per slot the
  chain-call actions (a bitmap of the XDP actions that go on to the next slot, always
  with bit 31, the stubs' return value), the run priority and the program flags. xnf
  ships its own (``xdp_dispatcher.bpf.c``), so it needs no xdp-tools at run time.
* **Order.** Components run by ascending priority (default 50), then by name, then by
  tag, as libxdp's ``cmp_xdp_programs`` sorts them.
* **Pins.** ``<bpffs>/xdp/dispatch-<ifindex>-<dispatcher prog id>/prog<N>-link`` and
  ``prog<N>-prog`` keep each component linked and findable; ``LIBXDP_BPFFS`` moves
  ``<bpffs>`` as it does for libxdp.
* **Lock.** ``flock(LOCK_EX)`` on the directory ``<bpffs>/xdp`` itself. libxdp takes it
  around its pin operations; xnf holds it for a whole change.
* **Change.** Never in place: a new dispatcher is loaded with the new set of
  components (each linked again, ``BPF_LINK_CREATE`` with the slot's BTF id: an
  freplace program can be linked to several targets, Linux 5.10), pinned, then swapped
  in by netlink with ``XDP_FLAGS_REPLACE`` and the old one as the expected program
  (``XDP_FLAGS_UPDATE_IF_NOEXIST`` when there was none); then the old pins go. If the
  interface changed meanwhile the swap fails and the change starts over, as in libxdp.
  Removing the last component removes the dispatcher.

A component is loaded as ``BPF_PROG_TYPE_EXT`` against a slot of a template
dispatcher (:func:`as_component`), then attached with
:func:`xnf.core.attach.xdp.attach_xdp`, which hands EXT programs to :func:`attach`
(this module registers itself with xdp when imported: :func:`as_component` is how an
freplace program is made, so it is loaded by then).
"""
import contextlib
import ctypes
import errno
import fcntl
import os
import struct
import threading

import attrs

from xnf.core import uapi
from xnf.core.attach import xdp as _xdp
from xnf.core.attach.base import check_type, program_fd
from xnf.core.errors import AttachError, BPFError, InterfaceNotFoundError, NamespaceNotFoundError, PinError
from xnf.core.kernel import info, syscall
from xnf.core.kernel import netns as _netns
from xnf.core.kernel import pin as _pin
from xnf.core.kernel.loader import load_collection
from xnf.core.kernel.maps import btf_by_id
from xnf.core.object import btf as B
from xnf.core.object.elf import load_spec as open_object

OBJECT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "xdp_dispatcher.bpf.o")

MAGIC = 236
VERSION = 2
RETVAL = 31  # what an empty stub returns; in every slot's chain-call actions
MAX_PROGS = 10
DEFAULT_PRIORITY = 50
ACTIONS = {"XDP_ABORTED": 0, "XDP_DROP": 1, "XDP_PASS": 2, "XDP_TX": 3, "XDP_REDIRECT": 4}
DEFAULT_ACTIONS = ("XDP_PASS",)
CONFIG = struct.Struct("<4B10I10I10I")  # struct xdp_dispatcher_config, 124 bytes
MAX_RETRY = 10

BPF_F_XDP_HAS_FRAGS = uapi.BPF_F_XDP_HAS_FRAGS
BPF_F_RDONLY_PROG = uapi.BPF_F_RDONLY_PROG


@attrs.frozen
class Component:
    """One program in a dispatcher, as libxdp sees it."""

    slot: int
    prog_id: int
    name: str
    priority: int
    actions: tuple
    """Names of the XDP actions that go on to the next slot."""
    frags: bool = False
    tag: str = ""


@attrs.define(eq=False)
class Dispatcher:
    """A libxdp dispatcher found on an interface, with our references to its parts."""

    ifname: str
    ifindex: int
    netns: str
    mode: str
    prog_id: int
    fd: object = attrs.field(repr=False)
    components: list = attrs.Factory(list)
    member_fds: list = attrs.field(factory=list, repr=False)

    @property
    def pin_dir(self):
        return pin_dir(self.ifindex, self.prog_id)

    def close(self):
        for fd in [self.fd, *self.member_fds]:
            fd.close()


@attrs.define(eq=False, kw_only=True)
class DispatcherAttachment(_xdp.XdpAttachment):
    """A program in the libxdp dispatcher of an interface.

    ``program`` is our freplace program; libxdp's pins keep it linked. ``detach()``
    rebuilds the dispatcher without it, leaving the other programs running. ``via`` is
    ``netlink``, as the dispatcher is attached: a record whose pin was never made is
    still found and removed by program id (:func:`~xnf.core.attach.base.detach_pinned`).
    """

    kind = "xdp-dispatcher"

    priority: int = DEFAULT_PRIORITY
    chain_call_actions: tuple = DEFAULT_ACTIONS

    @property
    def slot(self):
        """Where the program runs now (slots move as programs come and go), or None."""
        try:
            found = components(self.ifname, self.netns)
        except (InterfaceNotFoundError, NamespaceNotFoundError):
            return None
        return next((c.slot for c in found if c.prog_id == self.prog_id), None)

    def _fields(self):
        return {"mode": self.mode, "priority": self.priority, "chain_call_actions": list(self.chain_call_actions)}

    def to_dict(self):
        d = super().to_dict()
        d["slot"] = self.slot
        return d

    def _attached_netlink(self):
        return self.slot is not None

    def _detach_netlink(self):
        try:
            return remove(self.ifname, self.prog_id, self.netns)
        except (InterfaceNotFoundError, NamespaceNotFoundError):
            return False

    @classmethod
    def remove_netlink_of(cls, prog_id, ifname, netns=None):
        remove(ifname, prog_id, netns)

    def __str__(self):
        where = f" in netns {self.netns}" if self.netns else ""
        slot = self.slot
        at = f"slot {slot}" if slot is not None else "no longer there"
        return (f"xdp prog {self.prog_id} in the libxdp dispatcher on {self.ifname}{where} "
                f"({self.mode} mode, {at}, priority {self.priority})")

    def _replace_netlink(self, new_fd):
        raise AttachError(f"cannot replace {self}: a dispatcher slot is changed by detaching and "
                          "attaching again", "detach() it, then attach_xdp the new program")


def state_dir():
    """libxdp's directory on bpffs: ``$LIBXDP_BPFFS/xdp``, by default ``/sys/fs/bpf/xdp``."""
    return os.path.join(os.environ.get("LIBXDP_BPFFS") or "/sys/fs/bpf", "xdp")


def pin_dir(ifindex, dispatcher_id):
    return os.path.join(state_dir(), f"dispatch-{ifindex}-{dispatcher_id}")


_lock_state = threading.local()


@contextlib.contextmanager
def libxdp_lock():
    """libxdp's lock: ``flock(LOCK_EX)`` on ``<bpffs>/xdp``; nests within one thread
    (a second flock through a new open file would wait for ourselves)."""
    depth = getattr(_lock_state, "depth", 0)
    if depth:
        _lock_state.depth = depth + 1
        try:
            yield
        finally:
            _lock_state.depth -= 1
        return
    d = state_dir()
    _pin.require_bpffs(os.path.dirname(d))
    try:
        os.makedirs(d, mode=0o700, exist_ok=True)
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        raise PinError(f"cannot open libxdp's lock directory {d}: {e.strerror}", "run xnf as root") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _lock_state.depth = 1
        try:
            yield
        finally:
            _lock_state.depth = 0
    finally:
        os.close(fd)


# --- reading what is on an interface --------------------------------------------------

def _config_of(fd, pinfo):
    """The dispatcher config of program ``fd`` as a tuple, or None if it is no dispatcher.

    libxdp's test (check_dispatcher_version): named ``xdp_dispatcher``, one map, an
    array of one frozen value; magic 236 and the version in the value's first bytes,
    else the version from the BTF variable ``dispatcher_version`` (version 1 had no magic).
    """
    if pinfo.name != "xdp_dispatcher" or len(pinfo.map_ids) != 1:
        return None
    try:
        mfd = syscall.fd_by_id("map", pinfo.map_ids[0])
    except BPFError:
        return None
    try:
        mi = info.map_info(mfd)
        if mi.key_size != 4 or mi.value_size < 2 or mi.max_entries != 1 or not mi.flags & BPF_F_RDONLY_PROG:
            return None
        buf = ctypes.create_string_buffer(mi.value_size)
        syscall.map_lookup_elem(mfd, ctypes.c_uint32(0), buf)
        value = buf.raw
    finally:
        mfd.close()
    version = value[1] if value[0] == MAGIC else _btf_version(pinfo.btf_id)
    if version != VERSION or len(value) != CONFIG.size:
        raise AttachError(f"the XDP dispatcher (prog {pinfo.id}) speaks libxdp's protocol version "
                          f"{version}; xnf speaks version {VERSION}",
                          "unload its programs first (xdp-loader unload IFACE --all), or use an "
                          "xdp-tools of the same protocol version")
    return CONFIG.unpack(value)


def _btf_version(btf_id):
    """``dispatcher_version`` from the ``xdp_metadata`` section of the program's BTF."""
    if not btf_id:
        return None
    btf = btf_by_id(btf_id)
    sec = btf.find("xdp_metadata", B.KIND_DATASEC)
    entry = btf.datasec_var(sec, "dispatcher_version") if sec is not None else None
    if entry is None:
        return None
    _, ptr = btf.resolve(btf[entry[0]].type)
    return btf[ptr.type].array[2] if ptr.kind == B.KIND_PTR else None


def _full_name(pinfo):
    """The program's function name: the kernel keeps 15 characters, libxdp sorts by the
    whole name, found as the only BTF function that starts with those 15."""
    if len(pinfo.name) < 15 or not pinfo.btf_id:
        return pinfo.name

    matches = [t.name for t in btf_by_id(pinfo.btf_id).types
               if t.kind == B.KIND_FUNC and t.name.startswith(pinfo.name)]
    return matches[0] if len(matches) == 1 else pinfo.name


def action_names(mask):
    return tuple(name for name, bit in ACTIONS.items() if mask & (1 << bit))


def action_mask(actions):
    mask = 0
    for a in actions:
        name = a if isinstance(a, str) else {v: k for k, v in ACTIONS.items()}.get(a)
        if name not in ACTIONS:
            raise AttachError(f"unknown XDP action {a!r} for chain_call_actions",
                              "use names from " + ", ".join(ACTIONS))
        mask |= 1 << ACTIONS[name]
    return mask


def find(ifname, netns=None):
    """The libxdp dispatcher on ``ifname`` (a :class:`Dispatcher`), or None if the
    interface runs no XDP program or one that is not a dispatcher. Close it when done."""
    found = _xdp.query(ifname, netns)
    hp = found.get("native") or found.get("skb")
    if hp is None:
        return None
    try:
        fd = syscall.fd_by_id("prog", hp.prog_id)
    except BPFError:
        return None  # gone meanwhile
    try:
        pinfo = info.prog_info(fd)
        config = _config_of(fd, pinfo)
        if config is None:
            fd.close()
            return None
        d = Dispatcher(ifname=ifname, ifindex=_netns.ifindex(ifname, netns), netns=netns,
                       mode=hp.where, prog_id=pinfo.id, fd=fd)
        _read_components(d, config)
        return d
    except BaseException:
        fd.close()
        raise


def _read_components(d, config):
    n = config[2]
    actions, prios, flags = config[4:14], config[14:24], config[24:34]
    for i in range(n):
        path = os.path.join(d.pin_dir, f"prog{i}-prog")
        try:
            pfd = _pin.open_pinned(path, "prog")
        except PinError:
            d.close()
            raise AttachError(f"{d.ifname} runs a libxdp dispatcher (prog {d.prog_id}) whose pins are "
                              f"missing ({path})",
                              f"unload it (xdp-loader unload {d.ifname} --all) and attach again") from None
        d.member_fds.append(pfd)
        pinfo = info.prog_info(pfd)
        d.components.append(Component(slot=i, prog_id=pinfo.id, name=_full_name(pinfo), priority=prios[i],
                                      actions=action_names(actions[i] & ~(1 << RETVAL)),
                                      frags=bool(flags[i] & BPF_F_XDP_HAS_FRAGS), tag=pinfo.tag))


# --- building a dispatcher -------------------------------------------------------------

def _load_dispatcher(members):
    """Load our dispatcher for ``members`` ((Component, fd) in run order); returns its program."""
    n = len(members)
    frags = n > 0 and all(c.frags for c, _ in members)
    acts = [0] * MAX_PROGS
    prios = [0] * MAX_PROGS
    flags = [0] * MAX_PROGS
    for i, (c, _) in enumerate(members):
        acts[i] = action_mask(c.actions) | (1 << RETVAL)
        prios[i] = c.priority
        flags[i] = BPF_F_XDP_HAS_FRAGS if c.frags else 0
    spec = open_object(OBJECT)
    spec.maps[".rodata"].data = bytearray(CONFIG.pack(MAGIC, VERSION, n, int(frags), *acts, *prios, *flags))
    if frags:
        spec.programs["xdp_dispatcher"].flags |= BPF_F_XDP_HAS_FRAGS
    coll = load_collection(spec, programs=["xdp_dispatcher"])
    prog = coll.programs["xdp_dispatcher"]
    fd = program_fd(prog)
    coll.close()
    return fd


def _slot_btf_id(dispatcher_fd, func):
    btf = btf_by_id(info.prog_info(dispatcher_fd).btf_id)
    type_id = btf.find(func, B.KIND_FUNC)
    if type_id is None:
        raise AttachError(f"the dispatcher has no function {func!r}")
    return type_id


def _link_all(dispatcher_fd, members):
    links = []
    try:
        for i, (c, fd) in enumerate(members):
            try:
                links.append(syscall.link_create(fd, dispatcher_fd, 0,
                                                 target_btf_id=_slot_btf_id(dispatcher_fd, f"prog{i}")))
            except BPFError as e:
                raise AttachError(f"cannot link {c.name!r} (prog {c.prog_id}) into an XDP dispatcher: "
                                  f"{e.strerror}",
                                  "freplace programs need Linux 5.10 or newer and the same function "
                                  "signature as the slot, int f(struct xdp_md *)") from None
        return links
    except BaseException:
        for link in links:
            link.close()
        raise


def _pin_all(ifindex, dispatcher_id, members, links):
    path = pin_dir(ifindex, dispatcher_id)
    os.makedirs(path, mode=0o700, exist_ok=True)
    try:
        for i, ((_, fd), link) in enumerate(zip(members, links)):
            syscall.obj_pin(link, os.path.join(path, f"prog{i}-link"))
            syscall.obj_pin(fd, os.path.join(path, f"prog{i}-prog"))
    except BPFError as e:
        _unpin_dir(path)
        raise PinError(f"cannot pin the XDP dispatcher's programs under {path}: {e.strerror}") from None
    return path


def _unpin_dir(path):
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return
    for name in names:
        if name.startswith("prog") and (name.endswith("-link") or name.endswith("-prog")):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(path, name))
    with contextlib.suppress(OSError):
        os.rmdir(path)


def _swap(ifname, ifindex, netns, mode, new_fd, old_fd):
    """Put ``new_fd`` (or nothing, -1) on the hook in place of ``old_fd`` (or of nothing).
    Returns False if the hook no longer holds what we expected (someone was faster)."""
    flags = _xdp.MODE_FLAGS[mode]
    if old_fd is None:
        flags |= _xdp.XDP_FLAGS_UPDATE_IF_NOEXIST
    else:
        flags |= _xdp.XDP_FLAGS_REPLACE
    try:
        _xdp.setlink_fd(ifindex, netns, new_fd, flags, expected_fd=old_fd)
    except _xdp._Refused as e:
        if e.code == errno.EEXIST and old_fd is not None:
            return False
        att = _xdp.XdpAttachment(ifname=ifname, ifindex=ifindex, netns=netns, prog_id=0, mode=mode)
        raise _xdp._explain(att, e.code, e.message) from None
    return True


def _order(members):
    """libxdp's run order (cmp_xdp_programs): priority, name, then tag."""
    return sorted(members, key=lambda m: (m[0].priority, m[0].name.encode(), bytes.fromhex(m[0].tag or "")))


def _rebuild(ifname, netns, mode, members, old):
    """Install a dispatcher running ``members`` in place of ``old`` (a Dispatcher or None);
    returns False when the interface changed under us (the caller starts over)."""
    ifindex = _netns.ifindex(ifname, netns)
    members = _order(members)
    new_fd = _load_dispatcher(members)
    links = []
    try:
        links = _link_all(new_fd, members)
        path = _pin_all(ifindex, info.prog_info(new_fd).id, members, links)
        try:
            swapped = _swap(ifname, ifindex, netns, mode, int(new_fd), old.fd if old else None)
        except BaseException:
            _unpin_dir(path)
            raise
        if not swapped:
            _unpin_dir(path)
            return False
    finally:
        for link in links:
            link.close()
        new_fd.close()
    if old is not None:
        _unpin_dir(old.pin_dir)
    return True


# --- the public operations --------------------------------------------------------------

def attach(program, ifname, mode="auto", netns=None, priority=DEFAULT_PRIORITY, chain_call_actions=DEFAULT_ACTIONS):
    """Add freplace ``program`` (see :func:`as_component`) to the libxdp dispatcher on
    ``ifname``, installing one if the interface has no XDP program; returns a
    :class:`DispatcherAttachment`."""
    mode = _xdp.canonical_mode(mode)
    if mode == "offload":
        raise AttachError("an XDP dispatcher cannot run in offload mode (libxdp's neither)",
                          "attach the program alone with --mode offload")
    ifindex = _netns.ifindex(ifname, netns)
    fd = program_fd(program)
    try:
        pinfo = check_type(fd, {uapi.BPF_PROG_TYPE_EXT}, "an XDP dispatcher slot")
        me = Component(slot=-1, prog_id=pinfo.id, name=_full_name(pinfo), priority=int(priority),
                       actions=action_names(action_mask(chain_call_actions)), tag=pinfo.tag)
        for _ in range(MAX_RETRY):
            with libxdp_lock():
                old = find(ifname, netns)
                try:
                    if old is None and _xdp.query(ifname, netns):
                        present = ", ".join(f"prog {p.prog_id} ({p.prog_name}) in {m} mode"
                                            for m, p in _xdp.query(ifname, netns).items())
                        raise AttachError(f"{ifname} runs an XDP program that is not a libxdp dispatcher "
                                          f"({present}); it cannot be shared",
                                          "detach it first, or attach it through xdp-loader")
                    use_mode = old.mode if old is not None else _pick_mode(mode, ifname, ifindex, netns)
                    if old is not None and mode not in ("auto", old.mode):
                        raise AttachError(f"{ifname} runs its XDP dispatcher in {old.mode} mode, not {mode}",
                                          f"use --mode {old.mode} (or auto)")
                    if any(c.prog_id == me.prog_id for c in (old.components if old else [])):
                        raise AttachError(f"prog {me.prog_id} is already in the dispatcher on {ifname}")
                    members = list(zip(old.components, old.member_fds)) if old else []
                    if len(members) >= MAX_PROGS:
                        raise AttachError(f"the XDP dispatcher on {ifname} is full ({MAX_PROGS} programs)",
                                          "detach one of its programs first")
                    if _rebuild(ifname, netns, use_mode, members + [(me, fd)], old):
                        return DispatcherAttachment(ifname=ifname, ifindex=ifindex, netns=netns,
                                                   prog_id=me.prog_id, program=fd, mode=use_mode,
                                                   priority=me.priority, chain_call_actions=me.actions)
                finally:
                    if old is not None:
                        old.close()
        raise AttachError(f"the XDP program on {ifname} kept changing while xnf built a dispatcher "
                          f"({MAX_RETRY} tries)", "try again")
    except BaseException:
        fd.close()
        raise


def _attach_routed(program, ifname, mode, netns, priority, chain_call_actions):
    """:func:`attach` as ``attach_xdp`` calls it, its None meaning the defaults."""
    return attach(program, ifname, mode=mode, netns=netns,
                  priority=DEFAULT_PRIORITY if priority is None else priority,
                  chain_call_actions=chain_call_actions or DEFAULT_ACTIONS)


_xdp.route_extensions(_attach_routed)


def _pick_mode(mode, ifname, ifindex, netns):
    if mode != "auto":
        return mode
    caps = _xdp._caps(ifindex, netns)
    return "native" if caps is None or "basic" in caps else "skb"


def remove(ifname, prog_id, netns=None):
    """Take program ``prog_id`` out of the dispatcher on ``ifname``, leaving the others
    running (the dispatcher goes when it was the last); False if it was not there."""
    for _ in range(MAX_RETRY):
        with libxdp_lock():
            d = find(ifname, netns)
            if d is None:
                return False
            try:
                if not any(c.prog_id == prog_id for c in d.components):
                    return False
                rest = [(c, fd) for c, fd in zip(d.components, d.member_fds) if c.prog_id != prog_id]
                if rest:
                    done = _rebuild(ifname, netns, d.mode, rest, d)
                else:
                    done = _swap(ifname, d.ifindex, netns, d.mode, -1, d.fd)
                    if done:
                        _unpin_dir(d.pin_dir)
                if done:
                    return True
            finally:
                d.close()
    raise AttachError(f"the XDP program on {ifname} kept changing while xnf rebuilt its dispatcher "
                      f"({MAX_RETRY} tries)", "try again")


def components(ifname, netns=None):
    """The programs in the dispatcher on ``ifname`` in run order ([] if none)."""
    d = find(ifname, netns)
    if d is None:
        return []
    d.close()
    return list(d.components)


# --- loading components -----------------------------------------------------------------

_support = {}


def supported():
    """None if this kernel can run components (freplace linked to a dispatcher), else why not.

    As libxdp's compat check: load a dispatcher, an freplace of its ``compat_test``
    and link it. Cached for the process.
    """
    if "answer" in _support:
        return _support["answer"]
    try:
        with _template("compat_test") as (target_fd, btf_id):
            spec = open_object(OBJECT)
            _make_component(spec.programs["xdp_pass"], target_fd, btf_id)
            with load_collection(spec, programs=["xdp_pass"]) as coll:
                syscall.link_create(coll.programs["xdp_pass"].fd, target_fd, 0, target_btf_id=btf_id).close()
        answer = None
    except BPFError as e:
        answer = (f"this kernel refuses freplace (BPF_PROG_TYPE_EXT) programs, which libxdp's "
                  f"dispatcher needs ({e.strerror})")
    except Exception as e:  # a verifier or load error says the same
        answer = f"this kernel cannot run libxdp's dispatcher: {e}"
    _support["answer"] = answer
    return answer


@contextlib.contextmanager
def _template(func="prog0"):
    """A private dispatcher with one slot: the load-time target of components."""
    fd = _load_dispatcher([(Component(slot=0, prog_id=0, name="", priority=DEFAULT_PRIORITY,
                                      actions=DEFAULT_ACTIONS), None)])
    try:
        yield fd, _slot_btf_id(fd, func)
    finally:
        fd.close()


def _make_component(p, target_fd, btf_id):
    p.type = uapi.BPF_PROG_TYPE_EXT
    p.expected_attach_type = 0
    p.attach_prog_fd = int(target_fd)
    p.attach_btf_id = btf_id
    p.flags &= ~BPF_F_XDP_HAS_FRAGS  # the dispatcher carries frags, never a component (libxdp)


@contextlib.contextmanager
def as_component(spec, name):
    """Within the block, ``spec.programs[name]`` loads as a dispatcher component: an
    freplace program, verified against the slot of a template dispatcher (and later
    linked into the real one by :func:`attach`). Load the spec inside the block."""
    why = supported()
    if why:
        raise AttachError(why, "attach the program alone (multiprog=False)")
    with _template() as (target_fd, btf_id):
        _make_component(spec.programs[name], target_fd, btf_id)
        yield spec


def wanted(ifname, netns=None, multiprog="auto"):
    """Whether an XDP program for ``ifname`` should be loaded as a dispatcher component.

    ``True``: always (an error if the kernel cannot); ``False``: never; ``"auto"``: when
    the interface runs a libxdp dispatcher, or runs no XDP program while xdp-tools are
    in use on this machine (libxdp's directory ``<bpffs>/xdp`` exists), and the
    kernel can run components.
    """
    if multiprog not in (True, False, "auto"):
        raise AttachError(f"unknown multiprog value {multiprog!r}", "use True, False or 'auto'")
    if multiprog != "auto":
        return bool(multiprog)
    if supported():
        return False
    d = find(ifname, netns)
    if d is not None:
        d.close()
        return True
    return not _xdp.query(ifname, netns) and os.path.isdir(state_dir())
