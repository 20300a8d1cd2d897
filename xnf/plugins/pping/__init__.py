"""pping: passive RTT monitoring, as a BPF network function and as a pure-Python reference.

The event objects and the configuration are shared by both implementations; the
reference runs capture files (``run_pcap``) and is the test oracle of the BPF path.
Everything heavier (BPF loading, matplotlib, prometheus-client) is imported by the
modules that need it.
"""

from xnf.plugins.pping.config import ConfigError, PpingConfig
from xnf.plugins.pping.events import AggregateReport, Flow, FlowEvent, RttEvent, Stats
from xnf.plugins.pping.reference import Reference, run_pcap

__all__ = ["AggregateReport", "ConfigError", "Flow", "FlowEvent", "PpingConfig", "Reference",
           "RttEvent", "Stats", "run_pcap"]
