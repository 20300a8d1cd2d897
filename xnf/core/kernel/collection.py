"""The live objects of one loaded spec: programs and maps by name, closed together."""
import functools

from xnf.core.kernel.globaldata import DataSections, Variables


class Collection:
    """The live objects of one loaded spec. Closing it releases every fd (pins stay)."""

    def __init__(self, spec, programs, maps):
        self.spec = spec
        self.programs = programs
        self.maps = maps

    @functools.cached_property
    def data(self):
        """Global-data sections mapped into this process, as skeletons have them:
        ``coll.data[".bss"].counter``, ``coll.data[".data"]["limit"] = 5``."""
        return DataSections(self.spec, self.maps)

    @property
    def variables(self):
        """Every global variable by name, read and written in place: ``coll.variables["counter"]``."""
        return Variables(self.data)

    def close(self):
        if "data" in self.__dict__:
            self.data.close()
        for obj in list(self.programs.values()) + list(self.maps.values()):
            obj.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"Collection(programs={list(self.programs)}, maps={list(self.maps)})"
