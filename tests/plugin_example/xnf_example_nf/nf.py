"""``example``: count the frames an interface receives, with XDP.

Everything lives under the network function's pin directory
(``/sys/fs/bpf/xnf/<iface>[@<netns>]/example/``): the attachment (``xdp/``) and the
counter map (``maps/example_pkts``), so ``status`` and ``detach`` work from any later
process, and ``detach`` removes exactly what ``attach`` made.
"""
import time

import attrs

import xnf
from xnf.core.attach.pinroot import PinRoot
from xnf.core.attach.xdp import attach_xdp
from xnf.core.errors import AttachError
from xnf.core.kernel import netns as _netns
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

    def _pins(self):
        return PinRoot(self.iface, self.name, netns=self.netns)

    def attach(self):
        pins = self._pins()
        if pins.find(ATTACHMENT) is not None:
            raise AttachError(f"{self.name} is already attached to {self.iface}",
                              f"detach it first: xnf detach {self.name} {self.iface}")
        _netns.ifindex(self.iface, self.netns)  # a missing interface fails before anything is made
        spec = xnf.open_object(self.object_path(self.objects[0]))
        spec.rodata["cfg_verdict"] = VERDICTS[self.config.verdict]
        spec.maps[MAP].pin_path = f"{pins.maps_dir}/{MAP}"
        try:
            with xnf.load(spec) as coll:
                att = attach_xdp(coll.programs["example_count"], self.iface, mode=self.mode, netns=self.netns)
                try:
                    pins.store(ATTACHMENT, att)
                except BaseException:
                    att.detach()
                    raise
                att.close()
        except BaseException:
            pins.remove_all()
            raise

    def detach(self):
        self._pins().remove_all()

    def counters(self):
        """(frames, bytes) counted so far."""
        with Map.from_pin(f"{self._pins().maps_dir}/{MAP}") as m:
            return m[0], m[1]

    def status(self):
        att = self._pins().find(ATTACHMENT)
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
        att = PinRoot(iface, cls.name, netns=netns).find(ATTACHMENT)
        if att is None:
            return None
        att.close()
        return cls(iface, netns=netns, mode=att.mode)
