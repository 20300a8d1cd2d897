"""examples/execsnoop.py against /usr/sbin/execsnoop: the same exec()s, printed alike."""
import os
import secrets

import pytest

from side_by_side import side_by_side

pytestmark = pytest.mark.root


def _lines_with(lines, token):
    return [line for line in lines if token in line]


def test_execsnoop_prints_the_execs_the_tool_prints(tmp_path):
    """A program under a unique name run once, and a failed exec (-x): both print the same
    lines for them (comm, pid, ppid, return value, arguments: nothing here differs)."""
    token = "xnfx" + secrets.token_hex(5)  # 14 characters: the whole name fits comm (15)
    link = tmp_path / token
    link.symlink_to("/bin/true")
    not_executable = tmp_path / (token + ".txt")
    not_executable.write_text("not a program\n")
    with side_by_side("execsnoop.py", "execsnoop", args=["-x"]) as (ours, theirs):
        ok_pid = os.fork()
        if ok_pid == 0:
            try:
                os.execv(str(link), [str(link), "first", "arg-" + token])
            finally:
                os._exit(127)
        bad_pid = os.fork()
        if bad_pid == 0:
            try:
                os.execv(str(not_executable), [str(not_executable), "arg-" + token])
            finally:
                os._exit(126)
        assert os.waitpid(ok_pid, 0)[1] == 0
        assert os.waitstatus_to_exitcode(os.waitpid(bad_pid, 0)[1]) == 126
        for side in (ours, theirs):
            side.wait_for(lambda lines: len(_lines_with(lines, token)) >= 2)
        ours_lines, theirs_lines = ours.stop(), theirs.stop()
    mine, tool = _lines_with(ours_lines, token), _lines_with(theirs_lines, token)
    assert mine == tool and len(mine) == 2, (mine, tool)
    by_pid = {int(line.split()[1]): line.split() for line in mine}
    assert by_pid[ok_pid][0] == token and by_pid[ok_pid][2] == str(os.getpid()) and by_pid[ok_pid][3] == "0"
    assert by_pid[bad_pid][3] == "-13"  # EACCES: the tool's -x shows failed execs with their error
    assert by_pid[ok_pid][4:] == [str(link), "first", "arg-" + token]
