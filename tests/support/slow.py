"""A tc program that holds every frame for a set time (``slow_tc.bpf.o``): a neighbour at
a hook whose run time is known, to see whether it enters what another program measures."""
import os

OBJECT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "slow_tc.bpf.o")


def load_slow(delay_ns):
    """The loaded collection; its program ``slow`` busy-waits ``delay_ns`` per frame."""
    import xnf

    spec = xnf.open_object(OBJECT)
    spec.rodata["delay_ns"] = delay_ns
    return xnf.load(spec)
