"""The test kit: oracles and helpers shared by tests (and later bench and demos).

- ``tap``: a BPF tap placed immediately before and after the programs at both tc hooks
  of a device (``bracket_tap.bpf.c``);
- ``bracket``: its capture turned into the reference's input on the data path's clock,
  and pping's samples compared with the reference's, sample by sample;
- ``slow``: a tc program that holds every frame for a set time (``slow_tc.bpf.c``).
- ``distribution``: a throwaway dist-info that registers a plugin's entry points.

Tests import it as ``support`` (``tests/`` is on ``sys.path`` through its conftest).
"""
