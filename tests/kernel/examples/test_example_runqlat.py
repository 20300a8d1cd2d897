"""examples/runqlat.py against /usr/sbin/runqlat: the same run-queue latency histogram of
one process."""
import re
import subprocess
import sys

import pytest

from side_by_side import side_by_side

pytestmark = pytest.mark.root

SLEEPS = 50
_ROW = re.compile(r"^\s*(\d+) -> (\d+)\s*: (\d+)\s")

# The child waits on stdin (asleep, nothing to measure) until both tools are attached, then
# sleeps SLEEPS times: each wake-up puts it on a run queue once more.
CHILD = f"""
import sys, time
print("ready", flush=True)
sys.stdin.readline()
for _ in range({SLEEPS}):
    time.sleep(0.002)
"""


def _slots(lines):
    return {int(m.group(1)): int(m.group(3)) for m in map(_ROW.match, lines) if m}


def test_runqlat_histogram_counts_what_the_tool_counts():
    """Both count the same wake-ups and preemptions of the child: the kernel runs both tools'
    programs on each sched_wakeup and sched_switch, so the totals are equal. Each tool times
    the latency with its own clock reads, a few hundred ns apart, so a sample near a power of
    two may land one bucket over in one of them: at each boundary, the cumulative counts may
    differ by at most the samples of the two buckets beside it."""
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        args = ["-p", str(child.pid)]
        with side_by_side("runqlat.py", "runqlat", args=args, ready="Tracing run queue latency") as (ours, theirs):
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.wait(60) == 0
            mine, tool = _slots(ours.stop()), _slots(theirs.stop())
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert sum(tool.values()) >= SLEEPS, tool  # at least one wake-up per sleep
    assert sum(mine.values()) == sum(tool.values()), (mine, tool)
    lows = sorted(set(mine) | set(tool))
    cum_mine = cum_tool = 0
    for i, low in enumerate(lows):
        cum_mine += mine.get(low, 0)
        cum_tool += tool.get(low, 0)
        nxt = lows[i + 1] if i + 1 < len(lows) else None
        beside = min(mine.get(low, 0) + mine.get(nxt, 0), tool.get(low, 0) + tool.get(nxt, 0))
        assert abs(cum_mine - cum_tool) <= beside, (low, mine, tool)
