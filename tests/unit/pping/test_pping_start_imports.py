"""`xnf run pping` with tc hooks imports nothing it does not use before it is attached
(issue 14 item 4): not the XDP attach module, not libxdp's dispatcher, not the demo's
namespaces, not the output writer or its formats; checked in a fresh interpreter, as module names, not timed."""
import json
import subprocess
import sys

NOT_BEFORE_ATTACH = ("xnf.core.attach.xdp", "xnf.core.attach.dispatcher", "xnf.plugins.pping.demo",
                     "xnf.testing.topology", "xnf.plugins.pping.writer", "xnf.plugins.pping.formats",
                     "xnf.plugins.pping.prometheus", "prometheus_client", "pyroute2")


def test_the_tc_data_path_imports_no_xdp_or_output_module():
    code = ("import json, sys; import xnf.plugins.pping.nf, xnf.plugins.pping.datapath; "
            "print(json.dumps(sorted(sys.modules)))")
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                           check=True).stdout))
    assert not loaded & set(NOT_BEFORE_ATTACH), sorted(loaded & set(NOT_BEFORE_ATTACH))
