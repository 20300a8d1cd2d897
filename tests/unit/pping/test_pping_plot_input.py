"""`xnf pping plot` on files that are not pping results: one-line PlotErrors, never an
internal exception (issue 9: a binary file raised UnicodeDecodeError)."""

import json
import subprocess
import sys

import pytest

from xnf.plugins.pping.plot import PlotError, plot

RTT = {"timestamp": 1_700_000_000_000_000_000, "src_ip": "10.0.0.1", "src_port": 1, "dest_ip": "10.0.0.2",
       "dest_port": 2, "protocol": "TCP", "rtt": 5_000_000, "min_rtt": 5_000_000}


@pytest.mark.parametrize("content,fragment", [
    pytest.param(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)), "binary data at byte", id="binary"),
    pytest.param(b'{"rtt": 1}\n\xff\xfe\n', "binary data at byte 11", id="binary-after-json"),
    pytest.param(b"[" * 100_000, "nested too deeply", id="deep-array"),
    pytest.param(b"[" + b'{"a":' * 50_000, "not pping json output", id="deep-object"),
    pytest.param((json.dumps({**RTT, "timestamp": "noon"}) + "\n").encode(), "field 'timestamp'", id="rtt-type"),
    pytest.param((json.dumps({k: v for k, v in RTT.items() if k != "src_ip"}) + "\n").encode(), "field 'src_ip'",
                 id="rtt-missing"),
    pytest.param(b'{"rtt": NaN, "timestamp": 1}\n', "field", id="nan"),
    pytest.param(b'[{"ip_prefix": "10.0.0.0/24", "timestamp": 1, "histogram": [1, -2], "bin_width_ns": 1,'
                 b' "median_rtt": 1, "p95_rtt": 1}]', "bad histogram", id="histogram"),
])
def test_unplottable_files_are_plot_errors(tmp_path, content, fragment):
    path = tmp_path / "results.jsonl"
    path.write_bytes(content)
    with pytest.raises(PlotError) as err:
        plot(path, tmp_path / "out.png")
    assert str(path) in str(err.value) and fragment in str(err.value), str(err.value)
    assert "\n" not in str(err.value)


def test_plot_of_a_binary_file_is_one_line_on_the_cli(tmp_path):
    path = tmp_path / "capture.pcap"
    path.write_bytes(bytes(range(256)) * 4)
    r = subprocess.run([sys.executable, "-m", "xnf.cli.main", "pping", "plot", str(path), "-o",
                        str(tmp_path / "p.png")], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert "binary data" in r.stderr
