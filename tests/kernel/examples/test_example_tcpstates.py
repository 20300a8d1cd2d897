"""examples/tcpstates.py against /usr/sbin/tcpstates: the same TCP state changes."""
import socket

import pytest

from side_by_side import side_by_side

pytestmark = pytest.mark.root

# a loopback connection opened and closed by its client: every change of both ends and the listener
EXPECTED = sorted([("CLOSE", "LISTEN"), ("CLOSE", "SYN_SENT"), ("SYN_SENT", "ESTABLISHED"),
                   ("LISTEN", "SYN_RECV"), ("SYN_RECV", "ESTABLISHED"), ("ESTABLISHED", "FIN_WAIT1"),
                   ("ESTABLISHED", "CLOSE_WAIT"), ("CLOSE_WAIT", "LAST_ACK"), ("FIN_WAIT1", "FIN_WAIT2"),
                   ("FIN_WAIT2", "CLOSE"), ("LAST_ACK", "CLOSE"), ("LISTEN", "CLOSE")])


def _ours(lines, port):
    """Lines about the listener's port, without the MS column: each tool times the state it
    left with its own map of timestamps, so that column is the one that differs."""
    out = []
    for line in lines:
        fields = line.split()
        if len(fields) == 11 and str(port) in (fields[4], fields[6]):
            out.append(" ".join(fields[:10]))
    return sorted(out)


def test_tcpstates_prints_the_state_changes_the_tool_prints():
    with side_by_side("tcpstates.py", "tcpstates", args=["-4"]) as (ours, theirs):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        server, _ = listener.accept()
        client.close()
        server.recv(1)  # the client's FIN has arrived: the server side is in CLOSE_WAIT
        server.close()
        listener.close()
        for side in (ours, theirs):
            side.wait_for(lambda lines: len(_ours(lines, port)) >= len(EXPECTED))
        ours_lines, theirs_lines = ours.stop(), theirs.stop()
    mine, tool = _ours(ours_lines, port), _ours(theirs_lines, port)
    assert mine == tool, (mine, tool)
    assert sorted((f.split()[7], f.split()[9]) for f in mine) == EXPECTED, mine
