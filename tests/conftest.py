"""Suite-wide rules: tests marked ``root`` skip, with the reason, when not run as root."""
import os

import pytest

NEEDS_ROOT = "needs root (CAP_BPF, CAP_NET_ADMIN)"


def pytest_configure(config):
    config.addinivalue_line("markers", "root: needs root and a BPF-capable kernel (namespaces, veth, attach)")


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason=NEEDS_ROOT)
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)
