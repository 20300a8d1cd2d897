"""Driver profiles as stevedore plugins, including one shipped by a 'vendor' package."""
import sys
import textwrap

import pytest

from xnf.core.errors import PluginError
from xnf.drivers import profiles
from xnf.drivers.profiles import XDP_MODES, DriverProfile, find_profile

from support.distribution import write_distribution

SHIPPED = ["nfp", "netdevsim", "mlx5_core", "i40e", "ice", "ixgbe", "bnxt_en", "virtio_net", "veth", "tun"]


@pytest.mark.parametrize("driver", SHIPPED)
def test_every_shipped_profile_loads_by_driver_name(driver):
    profile = find_profile(driver)
    assert isinstance(profile, DriverProfile)
    assert profile.driver == driver
    assert "skb" in profile.xdp_modes and "native" in profile.xdp_modes
    assert profile.notes


def test_only_smartnics_offload():
    offloading = {d for d in SHIPPED if find_profile(d).can_offload}
    assert offloading == {"nfp", "netdevsim"}
    assert find_profile("nfp").offload_target == "nfp"
    assert find_profile("netdevsim").offload_target == "netdevsim"


def test_unknown_driver_has_no_profile():
    assert find_profile("xnf_no_such_driver") is None
    assert find_profile(None) is None


def test_bad_mode_is_refused():
    with pytest.raises(ValueError, match="unknown XDP modes"):
        DriverProfile("x", {"native", "hw"})


def install_vendor_package(tmp_path, monkeypatch, target):
    """A minimal installed distribution with an xnf.drivers entry point, on sys.path."""
    pkg = tmp_path / "acme_xnf"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        from xnf.drivers.profiles import DriverProfile
        ACME = DriverProfile("acme_nic", {"skb", "native"}, notes="Acme 100G")
        NOT_A_PROFILE = object()
    """))
    write_distribution(tmp_path, "acme-xnf", "1.0", {"xnf.drivers": {"acme_nic": target}})
    monkeypatch.syspath_prepend(str(tmp_path))
    # stevedore keeps entry points per namespace for the life of the process; a fresh
    # process (where a vendor's package is installed beforehand) starts with none.
    from stevedore.extension import ExtensionManager
    monkeypatch.setattr(ExtensionManager, "ENTRY_POINT_CACHE", {})
    monkeypatch.delitem(sys.modules, "acme_xnf", raising=False)


def test_vendor_profile_is_found(tmp_path, monkeypatch):
    install_vendor_package(tmp_path, monkeypatch, "acme_xnf:ACME")
    profile = find_profile("acme_nic")
    assert profile.notes == "Acme 100G"
    assert profile.xdp_modes == {"skb", "native"}


def test_vendor_entry_point_that_is_no_profile(tmp_path, monkeypatch):
    install_vendor_package(tmp_path, monkeypatch, "acme_xnf:NOT_A_PROFILE")
    with pytest.raises(PluginError, match="not a DriverProfile"):
        find_profile("acme_nic")


def test_vendor_entry_point_that_fails_to_import(tmp_path, monkeypatch):
    install_vendor_package(tmp_path, monkeypatch, "acme_xnf.missing:ACME")
    with pytest.raises(PluginError, match="failed to load"):
        find_profile("acme_nic")


def test_modes_are_best_first():
    assert XDP_MODES == ("offload", "native", "skb")
    assert profiles.VETH.can_offload is False
