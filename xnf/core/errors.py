"""Typed errors: every failure names the problem and, where one exists, the fix.

The CLI prints ``str(error)`` as one line; the API lets callers catch by class.
"""
import errno as _errno
import os


class XnfError(Exception):
    """Base of every error xnf raises on purpose."""

    hint = ""

    def __init__(self, message, hint=None):
        super().__init__(message)
        if hint is not None:
            self.hint = hint

    def __str__(self):
        msg = str(self.args[0]) if self.args else ""
        return f"{msg} ({self.hint})" if self.hint else msg


class BPFError(XnfError, OSError):
    """A bpf(2) command failed; ``errno`` is the kernel's answer."""

    def __init__(self, command, err, message=None, hint=None):
        text = message or f"{command}: {_strerror(err)} [{_errno.errorcode.get(err, _KERNEL_ERRNOS.get(err, err))}]"
        XnfError.__init__(self, text, hint if hint is not None else _hint_for(command, err))
        self.command = command
        self.errno = err  # after __init__: OSError.__init__ resets it
        self.strerror = _strerror(err)


class VerifierError(BPFError):
    """The verifier rejected a program; ``log`` is its whole log."""

    tail_lines = 12

    def __init__(self, program, err, log):
        self.program = program
        self.log = log
        lines = [line for line in log.rstrip().splitlines() if line.strip()]
        self.log_tail = lines[-self.tail_lines:]
        reasons = [line for line in lines if not line.startswith(("processed ", "verification time", "stack depth"))]
        short = "; ".join(reasons[-2:]) if reasons else os.strerror(err)
        super().__init__("BPF_PROG_LOAD", err,
                         f"program {program!r} rejected by the verifier: {short}",
                         hint="see .log for the whole verifier log")

    def describe(self):
        """The message followed by the relevant tail of the log."""
        return str(self) + "\n" + "\n".join("  " + line for line in self.log_tail)

    @property
    def source(self):
        """``(file, line, text)`` of the C line the verifier stopped in, or None: the last
        ``; text @ file:line`` the kernel wrote into the log from the program's BTF line
        info (``file``/``line`` are None from kernels that print ``; text`` alone)."""
        for entry in reversed(self.log.splitlines() if self.log else ()):
            if not entry.startswith("; "):
                continue
            text, at, where = entry[2:].rpartition(" @ ")
            file, _, line = where.rpartition(":")
            if at and line.isdigit():
                if line != "0" and text.strip():  # line 0: compiler-made code, no line of its own
                    return file, int(line), text.strip()
            elif entry[2:].strip():
                return None, None, entry[2:].strip()
        return None


class LicenseError(VerifierError):
    """A GPL-only helper used by an object without a GPL-compatible license."""

    def __init__(self, program, err, log, license):
        super().__init__(program, err, log)
        self.license = license
        XnfError.__init__(self, f"program {program!r} calls a GPL-only helper but the object's license is "
                                f"{license or 'missing'!r}",
                          'add char LICENSE[] SEC("license") = "GPL"; to the source')


class NotSupportedError(XnfError):
    """A feature the running kernel (or xnf itself, ``by="xnf"``) lacks; names it and, for the
    kernel, the first version that has it."""

    def __init__(self, feature, minimum_version=None, hint=None, by="the kernel"):
        self.feature = feature
        self.minimum_version = minimum_version
        msg = f"{by} does not support {feature}"
        if minimum_version:
            msg += f" (needs Linux {minimum_version} or newer)"
        super().__init__(msg, hint)


class ELFError(XnfError):
    """The file is not a BPF ELF object xnf can read."""


class SectionError(ELFError):
    """A program section name that maps to no known program type."""


class ObjectLimitError(ELFError):
    """An object declares more than xnf or the kernel accepts (a size, a count, a nesting
    depth): refused before anything that large is allocated."""


class BTFError(XnfError):
    """BTF that is malformed or uses something xnf does not handle."""




class MapIncompatibleError(XnfError):
    """A pinned map exists but does not match the spec; xnf never replaces it silently."""


class MapTypeError(XnfError, TypeError):
    """A reader or operation was given a map of the wrong type."""


class ObjectClosedError(XnfError, ValueError):
    """A map, program or reader used after ``close()``: its fd number may belong to another object now."""


class ReaderClosedError(ObjectClosedError):
    """``poll()`` or ``consume()`` on an event reader after ``close()``."""


class PinError(XnfError):
    """bpffs cannot be found or mounted, or a pin path is unusable."""


class LinkError(XnfError):
    """Relocation or bpf-to-bpf linking failed (missing symbol, unsupported relocation)."""


class AttachError(XnfError):
    """Attaching or detaching a program failed; nothing was left attached."""


class InterfaceNotFoundError(AttachError):
    """The named network interface does not exist (in the given namespace)."""

    def __init__(self, ifname, netns=None):
        self.ifname = ifname
        self.netns = netns
        where = f" in network namespace {netns!r}" if netns else ""
        super().__init__(f"no network interface named {ifname!r}{where}",
                         f"check the name with `ip {'-n ' + netns + ' ' if netns else ''}link`")


class NamespaceNotFoundError(XnfError):
    """The named network namespace does not exist."""

    def __init__(self, name):
        self.netns = name
        super().__init__(f"no network namespace named {name!r}",
                         "create it with `ip netns add` or check the name with `ip netns list`")


class ModeNotSupportedError(AttachError):
    """The interface cannot run a program in the requested mode."""


class PluginError(XnfError):
    """A plugin (network function, scheduler, driver profile) is missing or broken."""


class ConfigError(XnfError):
    """Options that are invalid or contradict each other."""


class ValueEncodeError(ConfigError, TypeError, ValueError):
    """A key or value that does not fit the map's BTF type (wrong kind, out of range);
    names the map and the field (``.map``, ``.field``) so nothing is stored silently."""


#: kernel-internal errnos that reach user space from bpf(2) but are not in libc's table
_KERNEL_ERRNOS = {524: "ENOTSUPP"}


def _strerror(err):
    if err == 524:
        return "Operation not supported"
    return os.strerror(err)


def _hint_for(command, err):
    if err == 524:
        return "this map or program type does not support the operation"
    if err == _errno.EPERM and command in ("BPF_MAP_UPDATE_ELEM", "BPF_MAP_DELETE_ELEM", "BPF_MAP_UPDATE_BATCH",
                                            "BPF_MAP_DELETE_BATCH") and os.geteuid() == 0:
        return "the map is frozen or read-only to user space (like .rodata after load): set such values in the spec before loading"
    if err == _errno.EPERM:
        if os.geteuid() == 0:
            return "the kernel refused this for the process: an LSM, lockdown, or a missing capability"
        return "run as root (CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN are needed)"
    if err == _errno.ENOSYS:
        return "the kernel was built without CONFIG_BPF_SYSCALL"
    if err == _errno.E2BIG and command == "BPF_MAP_UPDATE_ELEM":
        return "the map is full: raise max_entries or delete elements first"
    if err == _errno.E2BIG:
        return "the kernel is older than this attribute layout; a field set here is unknown to it"
    if err == _errno.EFAULT and command == "BPF_PROG_LOAD":
        return "this looks like a verifier bug; report it with the log"
    if err == _errno.ENOSPC and command.startswith("BPF_MAP"):
        return "the map is full; raise max_entries"
    return ""
