"""Hierarchical packet fair queueing over any tree given as configuration.

``tree`` is a nested dict: an inner node has ``children`` (and may have ``name``,
``weight`` and ``class`` to collect packets whose ``cls`` matches but whose flow is
not listed), a leaf has ``flow`` and ``weight``. Example, classes 70/30 with flows 1:1
and 1:9::

    {"children": [
        {"name": "A", "weight": 70, "children": [{"flow": 0, "weight": 1}, {"flow": 1, "weight": 1}]},
        {"name": "B", "weight": 30, "children": [{"flow": 2, "weight": 1}, {"flow": 3, "weight": 9}]}]}

Every inner node is a :class:`FairNode`: a PIFO of references to its backlogged
children. Flows not in the tree get a leaf of weight 1 under their class node, or
under the root.
"""
from xnf.plugins.pifo_sched.errors import SchedulerConfigError
from xnf.plugins.pifo_sched.hierarchy import FairNode, FlowQueue, push_packet, tag_scale
from xnf.plugins.pifo_sched.scheduler import Scheduler, check_weights


class Hpfq(Scheduler):
    """Hierarchical fair queueing: a tree of fair-queueing PIFOs from the `tree` option."""

    defaults = {"tree": None, "order": "start", "max_packet": 9000}

    def __init__(self, config=None):
        super().__init__(config)
        tree = self.config["tree"]
        if not isinstance(tree, dict) or not tree.get("children"):
            raise SchedulerConfigError("hpfq needs a `tree` option with `children`",
                                       "see `xnf sched list` or docs/pifo_sched.md for an example tree")
        self.leaves = {}
        self.class_nodes = {}
        self.root = self._build(tree, "root", 1.0, path="tree")

    def _build(self, spec, name, weight, path):
        children = spec.get("children") or []
        weights = [child.get("weight", 1) for child in children]
        check_weights(weights, f"weights under {path}")
        unknown = set(spec) - {"name", "weight", "children", "class"}
        if unknown:
            raise SchedulerConfigError(f"unknown keys {sorted(unknown)} in {path}",
                                       "inner nodes take name, weight, class, children")
        scale = tag_scale(self.config["max_packet"], min(weights + [1]))
        node = FairNode(spec.get("name", name), weight, order=self.config["order"], scale=scale)
        for index, (child, child_weight) in enumerate(zip(children, weights)):
            child_path = f"{path}.children[{index}]"
            if not isinstance(child, dict):
                raise SchedulerConfigError(f"{child_path} must be an object", "use {\"flow\": 0, \"weight\": 1}")
            if "children" in child:
                sub = self._build(child, child.get("name", child_path), child_weight, child_path)
                sub.parent = node
            elif "flow" in child:
                flow = child["flow"]
                if flow in self.leaves or str(flow) in self.leaves:
                    raise SchedulerConfigError(f"flow {flow!r} appears twice in the tree", "list each flow once")
                leaf = FlowQueue(flow, child_weight)
                leaf.parent = node
                self.leaves[flow] = leaf
            else:
                raise SchedulerConfigError(f"{child_path} has neither `children` nor `flow`",
                                           "a leaf is {\"flow\": ID, \"weight\": W}")
        if "class" in spec:
            self.class_nodes[spec["class"]] = node
        return node

    def __len__(self):
        return self.root.count

    def leaf_for(self, pkt):
        leaf = self.leaves.get(pkt.flow)
        if leaf is None:
            leaf = self.leaves.get(str(pkt.flow))
        if leaf is None:
            leaf = FlowQueue(pkt.flow, 1.0)
            leaf.parent = self.class_nodes.get(pkt.cls, self.root)
            self.leaves[pkt.flow] = leaf
        return leaf

    def enqueue(self, pkt, now):
        if self.full():
            self.drop(pkt, now, "overflow")
            return False
        push_packet(self.leaf_for(pkt), pkt)
        return True

    def dequeue(self, now):
        if not self.root.count:
            return None
        return self.root.pop()
