"""Run an example and the real tool at once, each as its own process, and collect what
they print: both are started, both must say they are ready (their header, printed once
attached), the test makes its known activity, then both get SIGINT and their output is
read to the end."""
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
EXAMPLES = os.path.join(REPO, "examples")
READY_TIMEOUT = 120  # s: extracting, parsing and loading on the shared 2-CPU machine takes seconds


def tool_binary(tool):
    path = shutil.which(tool, path="/usr/sbin:/usr/bin")
    if path is None:
        pytest.skip(f"no {tool}: Debian's libbpf-tools is not installed (tools/install installs it)")
    return path


class Watched:
    """A process whose stdout is read line by line in a thread."""

    def __init__(self, argv, ready):
        self.argv = argv
        self.ready_text = ready
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     cwd=REPO, start_new_session=True)
        self.lines = []
        self.ready = threading.Event()
        self.stderr = ""
        self._out = threading.Thread(target=self._read, daemon=True)
        self._err = threading.Thread(target=self._read_err, daemon=True)
        self._out.start()
        self._err.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if self.ready_text in line:
                self.ready.set()

    def _read_err(self):
        self.stderr = self.proc.stderr.read()

    def wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT
        while not self.ready.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self._out.join(5)
                self._err.join(5)
                raise AssertionError(f"{self.argv} never printed {self.ready_text!r} (exit {self.proc.poll()}): "
                                     f"{self.lines[-5:]} {self.stderr[-2000:]}")

    def wait_for(self, predicate, timeout=30):
        """Wait until ``predicate(lines)`` holds: events reach a reader some time after they
        happen, and a tool stopped before reading them drops them (libbpf-tools' tools do)."""
        deadline = time.monotonic() + timeout
        while not predicate(list(self.lines)) and time.monotonic() < deadline and self.proc.poll() is None:
            time.sleep(0.05)

    def stop(self):
        """SIGINT (the tools' Ctrl-C), then the whole output; the exit status must be 0."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            rc = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError(f"{self.argv} did not stop on SIGINT") from None
        self._out.join(10)
        self._err.join(10)
        assert rc == 0, f"{self.argv} exited {rc}: {self.stderr[-2000:]}"
        return self.lines

    def kill(self):
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@contextlib.contextmanager
def side_by_side(example, tool, args=(), ready="PID"):
    """``(ours, theirs)``, both ready; killed on the way out if the test did not stop them."""
    theirs_bin = tool_binary(tool)
    ours = Watched([sys.executable, os.path.join(EXAMPLES, example), *args], ready)
    theirs = None
    try:
        # the tool writes to a pipe: stdbuf makes its stdio line-buffered so the header shows at once
        theirs = Watched(["stdbuf", "-oL", theirs_bin, *args], ready)
        ours.wait_ready()
        theirs.wait_ready()
        yield ours, theirs
    finally:
        ours.kill()
        if theirs is not None:
            theirs.kill()
