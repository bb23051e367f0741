"""The files of a scan directory: ``manifest.json`` and one JSON record per finished cell.

Each record, ``DIR/cells/<key>.json``, is written atomically (temporary file +
``os.replace``), so a killed scan leaves only whole records and resumes with nothing lost. A
record counts as finished only if it is valid for its cell (:func:`record_problem`): the same
key, identity and seed, and either a finite distance series for every candidate limit or a
divergence report. Anything else (a truncated or hand-edited file, another cell's record) is
recomputed by the next scan and left out of summaries, which say so.
"""
import dataclasses
import json
import math
import warnings
from pathlib import Path

from meanfield_dropout.runtime.results import atomic_file


class ScanWarning(UserWarning):
    """Something in a scan directory was not as expected (e.g. invalid records, recomputed)."""


def cell_path(out_dir, key):
    """Where the record of the cell ``key`` lives."""
    return Path(out_dir) / "cells" / f"{key}.json"


def write_json_atomic(path, data):
    """Write ``data`` as JSON to ``path`` via a temporary file in the same directory
    (:func:`meanfield_dropout.runtime.results.atomic_file`)."""
    with atomic_file(path, "w") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)


def read_record(path):
    """The JSON object in ``path``, or ``None`` if the file is missing, unreadable or holds no
    JSON object (validity for a cell: :func:`record_problem`)."""
    try:
        with open(path) as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _normalized(value):
    """``value`` as it reads back from JSON (tuples become lists, keys strings)."""
    return json.loads(json.dumps(value, sort_keys=True))


def _series_problem(series):
    """Why ``series`` is not a non-empty list of finite numbers (None if it is)."""
    if not isinstance(series, list) or not series:
        return "not a non-empty list"
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
               for v in series):
        return "holds a value that is not a finite number"
    return None


def record_problem(record, cell):
    """Why ``record`` is not a valid finished record of ``cell`` (None if it is valid).

    Parameters
    ----------
    record : dict or None
        As read by :func:`read_record`.
    cell : Cell

    Returns
    -------
    str or None
        ``"missing"`` for no record, else a short reason.
    """
    if record is None:
        return "missing"
    if record.get("key") != cell.key:
        return f"holds the record of another cell ({record.get('key')!r})"
    if record.get("identity") != _normalized(cell.identity) or record.get("seed") != cell.seed:
        return "its identity or seed differs from the cell's"
    distances, diverged = record.get("distances"), record.get("diverged")
    if not isinstance(distances, dict):
        return "has no distances table"
    if diverged is not None:
        if not (isinstance(diverged, dict) and isinstance(diverged.get("message"), str)):
            return "has a malformed divergence report"
        return None
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


def check_records(out_dir, cells, action):
    """{key: problem} of the cells of ``out_dir`` without a valid record (see
    :func:`record_problem`); warns (:class:`ScanWarning`) once about the invalid ones, saying
    that they are ``action`` (e.g. ``"recomputed"``)."""
    problems = {}
    for cell in cells:
        path = cell_path(out_dir, cell.key)
        problem = record_problem(read_record(path), cell)
        if problem == "missing" and path.exists():
            problem = "is unreadable, truncated or not a JSON object"
        if problem is not None:
            problems[cell.key] = problem
    invalid = {key: problem for key, problem in problems.items() if problem != "missing"}
    if invalid:
        key, problem = next(iter(invalid.items()))
        warnings.warn(f"{len(invalid)} cell record(s) in {Path(out_dir) / 'cells'} are "
                      f"invalid and {action} (e.g. {key}.json {problem})", ScanWarning,
                      stacklevel=3)
    return problems


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
    """Record the configuration and the cell keys of the latest scan written to ``out_dir``."""
    write_json_atomic(Path(out_dir) / "manifest.json",
                      dict(config=manifest_config(config), cells=list(keys)))


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
    return manifest
