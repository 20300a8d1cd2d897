"""``example``: count the frames an interface receives, with XDP.

Everything lives under the network function's pin directory
(``/sys/fs/bpf/xnf/<iface>[@<netns>]/example/``): the attachment (``xdp/``) and the
counter map (``maps/example_pkts``), so ``status`` and ``detach`` work from any later
process, and ``detach`` removes exactly what ``attach`` made. ``attach`` builds the
instance with :meth:`~xnf.nf.NetworkFunction.building` (the attach protocol: interface
lock, staging directory, one rename to publish, rollback on failure), as the built-in
network functions do.
"""
import time

import attrs

import xnf
from xnf.core.attach.xdp import attach_xdp
from xnf.core.kernel.maps import Map
from xnf.nf import NetworkFunction

VERDICTS = {"pass": 2, "drop": 1}
MAP = "example_pkts"
ATTACHMENT = "xdp"


@attrs.define
class ExampleConfig:
    verdict: str = attrs.field(default="pass", metadata={"choices": tuple(VERDICTS),
                                                         "help": "what to do with each frame once counted"})
    interval: float = attrs.field(default=1.0, metadata={"help": "seconds between lines of `xnf run`"})

    @interval.validator
    def _positive(self, attribute, value):
        if value <= 0:
            raise ValueError(f"--interval must be positive, got {value}")


class ExampleNF(NetworkFunction):
    name = "example"
    description = "example third-party plugin: count received frames with XDP"
    objects = ("example.bpf.o",)
    hooks = ("xdp",)
    modes = ("skb", "native")
    Config = ExampleConfig

    def attach(self):
        spec = xnf.open_object(self.object_path(self.objects[0]))
        spec.rodata["cfg_verdict"] = VERDICTS[self.config.verdict]
        with self.building() as build, xnf.load(spec) as coll:
            build.attach(ATTACHMENT, coll.programs["example_count"], attach_xdp, mode=self.mode)
            build.pin_maps([(MAP, coll.maps[MAP])])

    def detach(self):
        self.pins.remove_all()

    def counters(self):
        """(frames, bytes) counted so far."""
        with Map.from_pin(f"{self.pins.maps_dir}/{MAP}") as m:
            return m[0], m[1]

    def status(self):
        att = self.pins.find(ATTACHMENT)
        try:
            info = {"via": att.via, "prog_id": att.prog_id, "mode": att.mode} if att else {}
        finally:
            if att is not None:
                att.close()
        frames, nbytes = self.counters()
        return dict(super().status(), **info, packets=frames, bytes=nbytes)

    def run(self, out, stop):
        while not stop.wait(self.config.interval):
            frames, nbytes = self.counters()
            out.write(f"{time.strftime('%H:%M:%S')} {self.iface}: {frames} packets, {nbytes} bytes\n")
            out.flush()

    @classmethod
    def attached(cls, iface, netns=None):
        att = cls.pin_root(iface, netns).find(ATTACHMENT)
        if att is None:
            return None
        att.close()
        return cls(iface, netns=netns, mode=att.mode)
