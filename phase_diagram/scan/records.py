"""The scan directory: a :class:`~meanfield_dropout.runtime.cells.CellStore` of kind ``"scan"``.

``DIR/manifest.json`` holds the configuration (:func:`manifest_config`) and the cell keys;
``DIR/cells/<key>.json`` one JSON record per finished cell, written atomically;
``DIR/claims/<key>.lock`` the claims. A record counts as finished only if it is valid for its
cell: the store checks its key and identity, :func:`record_problem` the rest (the seed, and
either a finite distance series for every candidate limit or a divergence report). Anything
else (a truncated or hand-edited file, another cell's record) is recomputed by the next scan
and left out of summaries, which say so.
"""
import dataclasses
import json
import math
from pathlib import Path

from meanfield_dropout.runtime.cells import CellStore, CellWarning

#: Warnings about a scan directory (invalid records, recomputed or left out).
ScanWarning = CellWarning


def _series_problem(series):
    """Why ``series`` is not a non-empty list of finite numbers (None if it is)."""
    if not isinstance(series, list) or not series:
        return "not a non-empty list"
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
               for v in series):
        return "holds a value that is not a finite number"
    return None


def record_problem(record, cell):
    """Why ``record``, whose key and identity are ``cell``'s, is not a finished record of it
    (None if it is).

    Parameters
    ----------
    record : dict
        As read back from ``DIR/cells/<key>.json``.
    cell : Cell

    Returns
    -------
    str or None
        A short reason.
    """
    if record.get("seed") != cell.seed:
        return "its seed differs from the cell's"
    distances, diverged = record.get("distances"), record.get("diverged")
    if not isinstance(distances, dict):
        return "has no distances table"
    if diverged is not None:
        if not (isinstance(diverged, dict) and isinstance(diverged.get("message"), str)):
            return "has a malformed divergence report"
        return None
    motion = record.get("dropout_motion")
    if motion is not None and not (isinstance(motion, (int, float)) and math.isfinite(motion)
                                   and motion >= 0):
        return "its dropout_motion is not a finite number >= 0"
    if set(distances) != set(cell.limits):
        return (f"has distances for {sorted(distances)}, not for the cell's limits "
                f"{sorted(cell.limits)}")
    for limit, value in distances.items():
        series = value.values() if isinstance(value, dict) else [value]
        if not series:
            return f"has no distance series for {limit}"
        for item in series:
            problem = _series_problem(item)
            if problem:
                return f"its distance to {limit} {problem}"
    return None


def scan_store(out_dir, config_table):
    """The cell store of the scan directory ``out_dir`` for the manifest configuration
    ``config_table`` (:func:`manifest_config`)."""
    return CellStore(out_dir, "scan", config_table, check=record_problem)


def manifest_config(config):
    """The table of ``config`` as the manifest stores it: what :func:`config_from_dict` reads
    back, with the cell function as the ``"module:function"`` the cells are keyed by (so a
    function registered under a name needs no registration to be summarised)."""
    from .cell_functions import cell_function_reference

    data = dataclasses.asdict(config)
    data["scaling"] = data.pop("scalings")      # asdict already turned them into dicts
    data["cell_function"] = cell_function_reference(config.cell_function)
    return data


def write_manifest(out_dir, config, keys):
    """Write the manifest of a scan of ``config`` with the cell ``keys`` to ``out_dir``."""
    scan_store(out_dir, manifest_config(config)).write_manifest(cells=list(keys))


def read_manifest(out_dir):
    """The manifest of ``out_dir``: a dict with a ``config`` table and a ``cells`` list of
    keys (a one-line ValueError naming the file if there is none or it is malformed)."""
    path = Path(out_dir) / "manifest.json"
    try:
        with open(path) as handle:
            manifest = json.load(handle)
    except FileNotFoundError:
        raise ValueError(f"{out_dir} holds no scan (no manifest.json)") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is unreadable: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("config"), dict):
        raise ValueError(f"{path} is not a scan manifest (expected a JSON object with a "
                         "'config' table and a 'cells' list)")
    cells = manifest.get("cells")
    if not isinstance(cells, list) or not all(isinstance(key, str) for key in cells):
        raise ValueError(f"{path} is not a scan manifest: 'cells' must be a list of cell keys")
    if manifest.get("kind", "scan") != "scan":
        raise ValueError(f"{path} is the manifest of a {manifest['kind']}, not of a scan")
    return manifest
