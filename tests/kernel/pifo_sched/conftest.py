"""pifo_sched kernel tests: helpers live beside the tests (iperf3_flows)."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
