"""Where pping's output goes: stdout or ``--write FILE``, reopened on SIGHUP.

Log rotation moves the file away and sends SIGHUP; the writer then finishes the old
file (closing the json array) and starts a new one under the same name. The signal
handler only sets a flag: the reopen happens in the thread that writes, between two
events, so no event is split across files.
"""

from __future__ import annotations

import signal
import sys
import threading

from xnf.core.errors import XnfError
from xnf.plugins.pping.formats import formatter
from xnf.plugins.pping.prometheus import PrometheusExporter


class OutputError(XnfError, OSError):
    """The output file cannot be opened or written (one-line message)."""


class Writer:
    """Formats events and writes them; use as a context manager or call :meth:`close`.

    ``json`` output needs a file of its own (one array per file), so an existing file
    is refused; line formats append.
    """

    def __init__(self, format: str = "standard", path=None, stream=None):
        self.format = format
        self.path = None if path is None else str(path)
        self._formatter = formatter(format)
        self._reopen_requested = False
        self._own = self.path is not None
        self._file = self._open() if self._own else (stream or sys.stdout)
        self._file.write(self._formatter.header())

    def _open(self):
        mode = "x" if self.format == "json" else "a"
        try:
            return open(self.path, mode, buffering=1 << 16)
        except FileExistsError:
            raise OutputError(f"--write {self.path}: file exists, and json output needs a new file "
                              "(remove it, or use --format jsonl to append)") from None
        except OSError as exc:
            raise OutputError(f"--write {self.path}: cannot open for writing: {exc.strerror}") from None

    def write(self, event) -> None:
        if self._reopen_requested:
            self.reopen()
        text = self._formatter.format(event)
        if text is not None:
            self._file.write(text)

    def write_many(self, events) -> None:
        """Write a batch (one ring-buffer poll, one pcap) with the fewest calls."""
        if self._reopen_requested:
            self.reopen()
        self._file.write(self._formatter.format_many(events))

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def reopen(self) -> None:
        """Finish the current file and start a fresh one at the same path.

        If the new file cannot be opened (a json file nobody moved away), output goes on
        in the old one and a warning goes to stderr, as ePPing does.
        """
        self._reopen_requested = False
        if not self._own:
            return
        try:
            new = self._open()
        except OutputError as exc:
            print(f"pping: warning: {exc}; output continues in the old file", file=sys.stderr)
            return
        self._file.write(self._formatter.footer())
        self._file.close()
        self._formatter = formatter(self.format)
        self._file = new
        self._file.write(self._formatter.header())

    def request_reopen(self, *_signal_args) -> None:
        """Signal-safe: ask for a reopen before the next write (the SIGHUP handler)."""
        self._reopen_requested = True

    def install_sighup(self):
        """Reopen on SIGHUP (main thread only); returns the previous handler."""
        return signal.signal(signal.SIGHUP, self.request_reopen)

    def close(self) -> None:
        if self._file is None:
            return
        self._file.write(self._formatter.footer())
        if self._own:
            self._file.close()
        else:
            self._file.flush()
        self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Output:
    """Everything pping does with events, live or offline: write them, feed Prometheus.

    Built from a :class:`~xnf.plugins.pping.config.PpingConfig`: ``--format`` and
    ``--write`` choose the :class:`Writer` (SIGHUP reopens a ``--write`` file when this
    runs in the main thread), ``--prometheus`` starts an exporter. Call :meth:`emit`
    with each batch of events (a ring-buffer poll), :meth:`update_stats` with the
    counters now and then, :meth:`close` at the end.
    """

    def __init__(self, config, stream=None):
        self.writer = Writer(config.format, config.write, stream=stream)
        self.prometheus = None
        self._old_sighup = None
        try:
            if config.prometheus:
                self.prometheus = PrometheusExporter(config.prometheus, config).start()
            if config.write and threading.current_thread() is threading.main_thread():
                self._old_sighup = self.writer.install_sighup()
        except BaseException:
            self.writer.close()
            raise

    def emit(self, events) -> None:
        if not events:
            return
        self.writer.write_many(events)
        if self.prometheus is not None:
            for event in events:
                self.prometheus.observe(event)

    def update_stats(self, stats) -> None:
        """The counters now; the run loop calls this about once a second, and the output
        is flushed then too: lines are written in batches, yet reach the file (or a
        ``tail -f``) within a second even when events are rare."""
        if self.prometheus is not None:
            self.prometheus.update_stats(stats)
        self.writer.flush()

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
        if self._old_sighup is not None:
            signal.signal(signal.SIGHUP, self._old_sighup)
            self._old_sighup = None
        if self.prometheus is not None:
            self.prometheus.close()
            self.prometheus = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
