"""Flows by TCP/UDP port for the BPF qdisc: ``--weights PORT=W`` on either data path.

The BPF qdisc takes a packet's flow (0..63) from ``skb->mark`` (xnf_qdisc.h). A tc
egress program (``bpf/port_flows.bpf.c``; tcx egress runs before the root qdisc's
enqueue) writes the flow number of a configured destination (else source) port into
the mark. Ports get flows 1, 2, ... in the order ``--weights`` names them; flow 0 is
everything else, at ``--default-weight``.
"""
import os
import struct

import xnf
from xnf.core.attach.tc import attach_tc
from xnf.core.errors import ConfigError
from xnf.core.kernel.pin import checkpoint

OBJECT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bpf", "port_flows.bpf.o")
PROGRAM = "port_flows_egress"
ATTACHMENT = "classifier"
MAP = "port_flows"
MAX_PORTS = 63  # flows 1..63 of the qdisc's 64


def flow_numbers(port_weights):
    """{port: flow} with flows 1, 2, ... in the order the ports were given."""
    if len(port_weights) > MAX_PORTS:
        raise ConfigError(f"{len(port_weights)} port weights, the BPF qdisc has {MAX_PORTS} flows for ports",
                          f"give at most {MAX_PORTS} PORT=W pairs")
    return {port: flow for flow, port in enumerate(port_weights, start=1)}


def flow_weights(port_weights, default_weight):
    """The qdisc's weights by flow number: flow 0 (other traffic) at ``default_weight``."""
    weights = {0: default_weight}
    weights.update({flow: port_weights[port] for port, flow in flow_numbers(port_weights).items()})
    return weights


class PortClassifier:
    """The port -> flow program at tc egress of ``iface``."""

    def __init__(self, iface, port_weights, netns=None):
        self.ifname, self.netns = iface, netns
        self.flows = flow_numbers(port_weights)
        self.collection = None
        self.attachment = None

    def build_into(self, txn):
        """Load, fill the port map, attach and (``txn`` not None) pin; all or nothing."""
        self.collection = xnf.load(OBJECT)
        try:
            ports = self.collection.maps[MAP]
            for port, flow in self.flows.items():
                ports[struct.pack("<H", port)] = struct.pack("<I", flow)
            program = self.collection.programs[PROGRAM]
            if txn is not None:
                txn.intend(ATTACHMENT, program)
            self.attachment = attach_tc(program, self.ifname, "egress", netns=self.netns)
            checkpoint("attached-classifier")
            if txn is not None:
                txn.store(ATTACHMENT, self.attachment)
                txn.pin_maps([(MAP, ports)])
        except BaseException:
            self.detach()
            raise
        return self

    def detach(self):
        """Detach the program and close (an unpinned classifier)."""
        if self.attachment is not None:
            self.attachment.detach()
            self.attachment = None
        self.release()

    def release(self):
        """Drop this process's references (a pinned classifier stays)."""
        if self.attachment is not None:
            self.attachment.close()
            self.attachment = None
        if self.collection is not None:
            self.collection.close()
            self.collection = None
