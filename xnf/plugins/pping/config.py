"""pping's configuration: one attrs class whose fields are its command-line options.

Field names are ePPing's long option names with ``-`` turned into ``_`` (the generic
network-function contract derives the CLI from them); ``metadata["help"]`` is the
option's help text. Contradictory or out-of-range settings raise :class:`ConfigError`
when the object is built, so nothing is ever attached with a half-valid setup.
"""

from __future__ import annotations

import ipaddress

import attrs

from xnf.core.errors import ConfigError  # also xnf.plugins.pping.config.ConfigError (docs/pping.md)

FORMATS = ("standard", "json", "jsonl", "ppviz")
RTT_TYPES = ("min", "smoothed")
INGRESS_HOOKS = ("tc", "xdp")
XDP_MODES = ("unspecified", "native", "generic")

WEEK_S = 7 * 24 * 3600
NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000


def _addresses(value):
    """Accept an iterable of addresses or one comma-separated string."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    out = []
    for v in value:
        try:
            out.append(str(ipaddress.ip_address(str(v).strip())))
        except ValueError:
            raise ConfigError(f"--local-addresses: {v!r} is not an IP address") from None
    return tuple(out)


def _opt(default, help, **meta):
    return attrs.field(default=default, metadata={"help": help, **meta})


@attrs.frozen
class PpingConfig:
    """Everything that shapes what pping measures and how it reports it."""

    tcp: bool = _opt(False, "track TCP with the timestamp option (default when no protocol is chosen)")
    icmp: bool = _opt(False, "track ICMP and ICMPv6 echo request/reply")
    seq_ack: bool = _opt(False, "also track TCP flows without timestamps on sequence/acknowledgement numbers (Karn's rule); implies --tcp")
    dns: bool = _opt(False, "track DNS over UDP (query id + flow)")
    quic: bool = _opt(False, "track the QUIC spin bit on UDP port 443 (short-header packets)")
    rate_limit: float = _opt(100.0, "minimum gap in ms between timestamps of one flow (0 = off)")
    rtt_rate: float = _opt(0.0, "minimum gap between timestamps as a multiple of the flow's RTT (0 = off); --rate-limit applies until an RTT is known")
    rtt_type: str = _opt("min", "RTT that --rtt-rate multiplies: min or smoothed (srtt = 7/8 srtt + 1/8 rtt)", choices=RTT_TYPES)
    include_local: bool = _opt(False, "also timestamp packets addressed to this host on ingress (local RTTs)")
    include_syn: bool = _opt(False, "also timestamp SYN packets (off by default: SYN-flood defence)")
    ingress_hook: str = _opt("tc", "ingress hook: tc or xdp", choices=INGRESS_HOOKS)
    xdp_mode: str = _opt("unspecified", "XDP attach mode with --ingress-hook xdp: unspecified, native or generic", choices=XDP_MODES)
    cleanup_interval: float = _opt(1.0, "seconds between expiry passes over timestamps and flows (0 = off)")
    format: str = _opt("standard", "output format: standard, json, jsonl or ppviz", choices=FORMATS)
    write: "str | None" = _opt(None, "write output to FILE instead of stdout (SIGHUP reopens it)")
    aggregate: int = _opt(0, "report per-prefix RTT histograms every S seconds instead of individual events (0 = off)")
    aggregate_subnets_v4: int = _opt(24, "IPv4 prefix length for --aggregate")
    aggregate_subnets_v6: int = _opt(48, "IPv6 prefix length for --aggregate")
    aggregate_reverse: bool = _opt(False, "aggregate RTTs by the reply's destination prefix instead of its source")
    aggregate_timeout: int = _opt(30, "seconds after which an idle prefix is dropped from aggregation (0 = never)")
    prometheus: "str | None" = _opt(None, "serve Prometheus metrics at ADDR:PORT")
    read: "str | None" = _opt(None, "read packets from a pcap/pcapng FILE instead of an interface (pure-Python reference)")
    local_addresses: tuple = attrs.field(
        default=(), converter=_addresses,
        metadata={"help": "with --read: comma-separated addresses of the capturing host (local filtering and direction)"})
    timestamp_lifetime: float = _opt(10.0, "seconds after which an unmatched timestamp expires")
    timestamp_rtt_lifetime: int = _opt(8, "an unmatched timestamp also expires after this many smoothed RTTs")
    flow_lifetime: float = _opt(300.0, "seconds of inactivity after which a flow times out")
    icmp_flow_lifetime: float = _opt(30.0, "seconds of inactivity after which an ICMP or DNS flow times out")
    unopened_flow_lifetime: float = _opt(30.0, "seconds after which a flow that never saw a reply times out")
    timestamp_map_size: int = _opt(1 << 17, "entries in the timestamp map")
    flow_map_size: int = _opt(1 << 17, "entries in the flow map")
    aggregate_map_size: int = _opt(1 << 14, "prefixes per address family in the aggregation maps")

    def __attrs_post_init__(self):
        _check_range("--rate-limit", self.rate_limit, 0, WEEK_S * 1000)
        _check_range("--rtt-rate", self.rtt_rate, 0, 10000)
        _check_range("--cleanup-interval", self.cleanup_interval, 0, WEEK_S)
        _check_range("--aggregate", self.aggregate, 0, WEEK_S)
        _check_range("--aggregate-subnets-v4", self.aggregate_subnets_v4, 0, 32)
        _check_range("--aggregate-subnets-v6", self.aggregate_subnets_v6, 0, 64)
        _check_range("--aggregate-timeout", self.aggregate_timeout, 0, WEEK_S)
        for name in ("timestamp_lifetime", "flow_lifetime", "icmp_flow_lifetime", "unopened_flow_lifetime"):
            _check_range("--" + name.replace("_", "-"), getattr(self, name), 0, WEEK_S)
        _check_range("--timestamp-rtt-lifetime", self.timestamp_rtt_lifetime, 0, 1 << 20)
        for name in ("timestamp_map_size", "flow_map_size", "aggregate_map_size"):
            _check_range("--" + name.replace("_", "-"), getattr(self, name), 1, 1 << 26)
        for name, allowed in (("rtt_type", RTT_TYPES), ("ingress_hook", INGRESS_HOOKS),
                              ("xdp_mode", XDP_MODES), ("format", FORMATS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"--{name.replace('_', '-')} must be one of {', '.join(allowed)}, "
                                  f"not {getattr(self, name)!r}")
        if self.rtt_type == "smoothed" and not self.rtt_rate:
            raise ConfigError("--rtt-type smoothed only applies with --rtt-rate X; add --rtt-rate or drop --rtt-type")
        if self.xdp_mode != "unspecified" and self.ingress_hook != "xdp":
            raise ConfigError(f"--xdp-mode {self.xdp_mode} needs --ingress-hook xdp")
        if self.aggregate and self.format == "ppviz":
            raise ConfigError("--aggregate has no ppviz output; use --format standard, json or jsonl")
        if not self.aggregate:
            changed = [f"--{n.replace('_', '-')}" for n in
                       ("aggregate_subnets_v4", "aggregate_subnets_v6", "aggregate_reverse", "aggregate_timeout")
                       if getattr(self, n) != attrs.fields_dict(PpingConfig)[n].default]
            if changed:
                raise ConfigError(f"{', '.join(changed)} only apply with --aggregate S")
        if self.read is not None:
            if self.ingress_hook != "tc":
                raise ConfigError("--ingress-hook does not apply to --read (no hook is attached offline)")
            if self.prometheus is not None:
                raise ConfigError("--prometheus serves live metrics and --read ends with the capture; "
                                  "write --format json and use `xnf pping plot` instead")
        elif self.local_addresses:
            raise ConfigError("--local-addresses only applies to --read; live pping finds local addresses with bpf_fib_lookup")
        if self.prometheus is not None:
            parse_listen_address(self.prometheus)

    # Derived values both implementations use -------------------------------------

    @property
    def track_tcp(self) -> bool:
        return self.tcp or self.seq_ack or not (self.icmp or self.dns or self.quic)

    @property
    def rate_limit_ns(self) -> int:
        return int(self.rate_limit * NS_PER_MS)

    @property
    def rtt_rate_fixed(self) -> int:
        """``rtt_rate`` as 16.16 fixed point: the kernel multiplies RTTs by it in integers."""
        return int(round(self.rtt_rate * 65536))

    @property
    def use_srtt(self) -> bool:
        return self.rtt_type == "smoothed"

    @property
    def localfilt(self) -> bool:
        return not self.include_local

    @property
    def skip_syn(self) -> bool:
        return not self.include_syn


def _check_range(option, value, low, high):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{option} must be a number, not {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{option} must be in [{low:g}, {high:g}], not {value:g}")


def parse_listen_address(text: str):
    """``ADDR:PORT`` (``[v6]:PORT`` for IPv6) -> ``(addr, port)``."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    try:
        port_num = int(port)
        if sep != ":" or not host or not 0 < port_num < 65536:
            raise ValueError
        if host != "localhost":
            ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(f"--prometheus {text!r}: expected ADDR:PORT such as 127.0.0.1:9101") from None
    return host, port_num
