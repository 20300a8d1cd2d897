"""``spec.rodata`` and ``spec.variables`` as read-only-shaped mappings: iteration, len, items, repr."""
import os

import xnf

OBJ = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                   "tests", "bpf", "global_data.bpf.o")


def test_rodata_iterates_over_its_variable_names():
    spec = xnf.open_object(OBJ)
    assert list(spec.rodata) == spec.rodata.keys() == ["cfg_verdict", "cfg_scale", "custom_ro"]
    assert len(spec.rodata) == 3 and "cfg_scale" in spec.rodata and "counter" not in spec.rodata
    assert dict(spec.rodata) == dict(spec.rodata.items()) == {"cfg_verdict": 2, "cfg_scale": 1, "custom_ro": 11}
    assert spec.rodata.values() == [2, 1, 11]
    assert len(spec.variables) == len(list(spec.variables)) == 9


def test_repr_lists_names_and_current_values():
    spec = xnf.open_object(OBJ)
    spec.rodata["cfg_scale"] = 5
    assert repr(spec.rodata) == "DataView(cfg_verdict=2, cfg_scale=5, custom_ro=11)"
    assert "data_array=[1, 2, 3, 4]" in repr(spec.variables)
