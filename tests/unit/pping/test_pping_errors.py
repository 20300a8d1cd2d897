"""pping raises xnf's own error types (issue 13): a record the decoder does not know is
an XnfError (one line on the CLI), and pping's ConfigError is the core one, still
importable under its documented name."""
import pytest

from xnf.core import errors
from xnf.plugins.pping import bpf_events, config
from xnf.plugins.pping.config import PpingConfig


def test_decode_error_is_an_xnf_error_and_still_a_value_error():
    with pytest.raises(bpf_events.DecodeError) as e:
        bpf_events.Decoder(0).decode(b"\x07" + bytes(63))
    assert isinstance(e.value, errors.XnfError)
    assert isinstance(e.value, ValueError)  # callers that caught ValueError keep working
    assert "unknown pping record (type 7" in str(e.value)


def test_pping_config_error_is_the_core_one():
    assert config.ConfigError is errors.ConfigError
    from xnf.plugins import pping

    assert pping.ConfigError is errors.ConfigError


def test_contradictions_raise_the_core_config_error():
    with pytest.raises(errors.ConfigError, match="needs --ingress-hook xdp"):
        PpingConfig(xdp_mode="native")
