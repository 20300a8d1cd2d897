"""pping kernel tests: helpers live beside the tests (pping_harness, pping_topology)."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
