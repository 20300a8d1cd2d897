"""The live objects of one loaded spec: programs and maps by name, closed together."""


class Collection:
    """The live objects of one loaded spec. Closing it releases every fd (pins stay)."""

    def __init__(self, spec, programs, maps):
        self.spec = spec
        self.programs = programs
        self.maps = maps

    def close(self):
        for obj in list(self.programs.values()) + list(self.maps.values()):
            obj.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"Collection(programs={list(self.programs)}, maps={list(self.maps)})"
