"""Throwaway network namespaces joined by veth pairs, for tests, benchmarks and demos.

Everything is made through netlink (pyroute2) and /proc/sys, never by running ``ip``;
names carry a random tag, so two runs at the same time never collide; everything made
is removed by :meth:`Topology.close` (the ``with`` block's end, or interpreter exit if
the caller forgot), also when building failed half-way. Needs root (CAP_NET_ADMIN and
CAP_SYS_ADMIN for namespaces).

* :class:`VethPair`: two namespaces (or the initial one and a new one) joined by a veth;
* :class:`ClientMiddleboxServer`: client <-> forwarding middlebox <-> server, IPv4 and IPv6.
"""
import atexit
import os
import uuid

from xnf.core.kernel import netns as _netns


class Topology:
    """Namespaces and links made under one random tag; :meth:`close` removes them all."""

    def __init__(self, prefix="xnf"):
        self.tag = uuid.uuid4().hex[:8]
        self.prefix = prefix
        self._namespaces = []
        self._root_links = []
        self._closers = []

    def __enter__(self):
        try:
            self.build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def build(self):
        """Make what the topology describes (subclasses); called by ``with``."""
        atexit.register(self.close)

    def on_close(self, fn):
        """Call ``fn`` first when closing (e.g. to stop traffic that runs in the namespaces)."""
        self._closers.append(fn)

    def close(self):
        """Remove everything this topology made; safe to call twice."""
        from pyroute2 import netns  # pyroute2 only when namespaces are used: `import xnf` stays light

        while self._closers:
            try:
                self._closers.pop()()
            except Exception:  # noqa: BLE001 - removal must go on
                pass
        while self._root_links:
            name = self._root_links.pop()
            try:
                with _rtnl(None) as ipr:
                    for index in ipr.link_lookup(ifname=name):
                        ipr.link("del", index=index)
            except Exception:  # noqa: BLE001 - gone already
                pass
        while self._namespaces:  # deleting a namespace deletes the veths in it
            try:
                netns.remove(self._namespaces.pop())
            except OSError:
                pass
        atexit.unregister(self.close)

    # --- building blocks -----------------------------------------------------------------

    def namespace(self, role, ipv6=True):
        """A new namespace ``<prefix>-<tag>-<role>`` with ``lo`` up. With ``ipv6=False``
        IPv6 is off there, so no autoconfiguration packet crosses its links."""
        from pyroute2 import netns

        name = f"{self.prefix}-{self.tag}-{role}"
        netns.create(name)
        self._namespaces.append(name)
        with _rtnl(name) as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
        if not ipv6:
            sysctl(name, "net/ipv6/conf/all/disable_ipv6", "1")
            sysctl(name, "net/ipv6/conf/default/disable_ipv6", "1")
        return name

    def veth(self, ns_a, if_a, ns_b, if_b):
        """A veth pair ``if_a`` (in ``ns_a``; ``None`` = the initial namespace) <-> ``if_b``
        (in ``ns_b``). Made under tagged names in the initial namespace, then moved and
        renamed, so fixed names like ``eth0`` can be used in every namespace."""
        tmp_a, tmp_b = f"xt{self.tag}{len(self._root_links)}a", f"xt{self.tag}{len(self._root_links)}b"
        with _rtnl(None) as ipr:
            ipr.link("add", ifname=tmp_a, kind="veth", peer=tmp_b)
        self._root_links.append(tmp_a)
        for tmp, ns, final in ((tmp_a, ns_a, if_a), (tmp_b, ns_b, if_b)):
            move_link(tmp, ns, final, up=False)
        self._root_links.pop()
        if ns_a is None:
            self._root_links.append(if_a)
        return if_a, if_b

    def address(self, ns, ifname, *addresses):
        """Add ``addresses`` (``"10.0.0.1/24"``, ``"fd00::1/64"``: IPv6 without DAD) and set the link up."""
        with _rtnl(ns) as ipr:
            index = ipr.link_lookup(ifname=ifname)[0]
            for address in addresses:
                ip, prefixlen = address.split("/")
                extra = {"flags": 0x02} if ":" in ip else {}  # IFA_F_NODAD: usable at once
                ipr.addr("add", index=index, address=ip, prefixlen=int(prefixlen), **extra)
            ipr.link("set", index=index, state="up")

    def route(self, ns, dst, gateway):
        with _rtnl(ns) as ipr:
            ipr.route("add", dst=dst, gateway=gateway)


class VethPair(Topology):
    """``if_a`` (in ``ns_a``) <-> ``if_b`` (in ``ns_b``) with ``ip_a``/``ip_b`` on a /24.

    ``root_a=True`` leaves ``if_a`` in the initial namespace (``ns_a`` is ``None``);
    ``same_namespace=True`` puts both ends in ``ns_a`` (no addresses). IPv6 is off in the
    new namespaces unless ``ipv6=True``, so packet counts come from the test alone.
    """

    def __init__(self, ip_a="10.201.0.1", ip_b="10.201.0.2", root_a=False, same_namespace=False, ipv6=False,
                 prefix="xnf"):
        super().__init__(prefix)
        self.ip_a, self.ip_b = ip_a, ip_b
        self.root_a, self.same_namespace, self.ipv6 = root_a, same_namespace, ipv6
        self.ns_a = None if root_a else f"{prefix}-{self.tag}-a"
        self.ns_b = self.ns_a if same_namespace else f"{prefix}-{self.tag}-b"
        self.if_a, self.if_b = f"xa{self.tag}", f"xb{self.tag}"

    def build(self):
        super().build()
        if not self.root_a:
            self.namespace("a", self.ipv6)
        if not self.same_namespace:
            self.namespace("b", self.ipv6)
        self.veth(self.ns_a, self.if_a, self.ns_b, self.if_b)
        if self.root_a and not self.ipv6:
            sysctl(None, f"net/ipv6/conf/{self.if_a}/disable_ipv6", "1")
        if self.same_namespace:
            for ifname in (self.if_a, self.if_b):
                self.address(self.ns_a, ifname)
        else:
            self.address(self.ns_a, self.if_a, f"{self.ip_a}/24")
            self.address(self.ns_b, self.if_b, f"{self.ip_b}/24")
        return self

    def ping(self, count=3, to="a"):
        """Ping ``ip_a`` from ``ns_b`` (or ``ip_b`` from ``ns_a``); the number of replies."""
        from xnf.testing.traffic import ping

        src, dst = (self.ns_b, self.ip_a) if to == "a" else (self.ns_a, self.ip_b)
        return ping(src, dst, count)[0]


class ClientMiddleboxServer(Topology):
    """client (``cli0``) <-> (``mid0``) middlebox (``mid1``) <-> (``srv0``) server.

    Addresses ``10.<net>.1.0/24`` and ``fd00:<net>:1::/64`` on the client side,
    ``10.<net>.2.0/24`` and ``fd00:<net>:2::/64`` on the server side (``net`` < 256); the middlebox forwards
    both families; client and server route through it. ``congestion_control`` is set on
    client and server (the default, cubic, is not always allowed in a new namespace).
    """

    def __init__(self, net=71, congestion_control="reno", prefix="xnf"):
        super().__init__(prefix)
        self.net = net
        self.congestion_control = congestion_control
        self.cli, self.mid, self.srv = (f"{prefix}-{self.tag}-{r}" for r in ("c", "m", "s"))
        self.cli_ip, self.srv_ip = f"10.{net}.1.2", f"10.{net}.2.2"
        self.mid_ip0, self.mid_ip1 = f"10.{net}.1.1", f"10.{net}.2.1"
        self.cli_ip6, self.srv_ip6 = f"fd00:{net}:1::2", f"fd00:{net}:2::2"
        self.mid_ip6_0, self.mid_ip6_1 = f"fd00:{net}:1::1", f"fd00:{net}:2::1"

    def build(self):
        super().build()
        for role in ("c", "m", "s"):
            ns = self.namespace(role)
            sysctl(ns, "net/ipv6/conf/all/disable_ipv6", "0")
            sysctl(ns, "net/ipv6/conf/default/accept_dad", "0")
        self.veth(self.cli, "cli0", self.mid, "mid0")
        self.veth(self.mid, "mid1", self.srv, "srv0")
        self.address(self.cli, "cli0", f"{self.cli_ip}/24", f"{self.cli_ip6}/64")
        self.address(self.mid, "mid0", f"{self.mid_ip0}/24", f"{self.mid_ip6_0}/64")
        self.address(self.mid, "mid1", f"{self.mid_ip1}/24", f"{self.mid_ip6_1}/64")
        self.address(self.srv, "srv0", f"{self.srv_ip}/24", f"{self.srv_ip6}/64")
        self.route(self.cli, "0.0.0.0/0", self.mid_ip0)
        self.route(self.srv, "0.0.0.0/0", self.mid_ip1)
        self.route(self.cli, "::/0", self.mid_ip6_0)
        self.route(self.srv, "::/0", self.mid_ip6_1)
        sysctl(self.mid, "net/ipv4/ip_forward", "1")
        sysctl(self.mid, "net/ipv6/conf/all/forwarding", "1")
        if self.congestion_control:
            for ns in (self.cli, self.srv):
                sysctl(ns, "net/ipv4/tcp_congestion_control", self.congestion_control)
        return self


def move_link(ifname, ns, new_name=None, up=True):
    """Move link ``ifname`` of the initial namespace into ``ns`` (``None``: it stays),
    renamed ``new_name`` there (so a fixed name never collides in the initial namespace),
    and set it up unless ``up=False``. For links made outside a topology too (a netdevsim
    port): whoever made the link removes it."""
    new_name = new_name or ifname
    with _rtnl(None) as ipr:
        index = ipr.link_lookup(ifname=ifname)[0]
        if ns is None:
            if new_name != ifname:
                ipr.link("set", index=index, ifname=new_name)
        else:
            ipr.link("set", index=index, net_ns_fd=ns)
    if ns is not None:
        with _rtnl(ns) as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname=ifname)[0], ifname=new_name)
    if up:
        with _rtnl(ns) as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname=new_name)[0], state="up")


def sysctl(ns, key, value):
    """Write ``/proc/sys/<key>`` as seen from namespace ``ns`` (``None``: ours)."""
    with _netns.entered(ns):
        fd = os.open(f"/proc/sys/{key}", os.O_WRONLY)  # net sysctls resolve at open, in the thread's namespace
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _rtnl(ns):
    from xnf.core.attach.netlink import rtnl  # pyroute2 inside: imported when a topology is built

    return rtnl(ns)
