"""A throwaway installed distribution: how tests register a plugin's entry points.

importlib.metadata (network functions, schedulers) and stevedore (driver profiles) find a
package by its ``NAME-VERSION.dist-info`` folder on ``sys.path``; writing one under a
temporary directory registers entry points without installing anything.
"""


def write_distribution(path, name, version, entry_points):
    """``path/<name>-<version>.dist-info`` with METADATA and ``entry_points``, a
    {group: {entry name: "module:attribute"}} dict; returns the folder."""
    dist = path / f"{name.replace('-', '_')}-{version}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (dist / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{entry} = {target}\n" for entry, target in entries.items())
        for group, entries in entry_points.items()))
    return dist
