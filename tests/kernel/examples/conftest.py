"""Tests of examples/: each example run beside the libbpf-tools binary it re-does
(helpers in side_by_side.py)."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
