"""The files of a scan directory: ``manifest.json`` and one JSON record per finished cell.

Each record, ``DIR/cells/<key>.json``, is written atomically (temporary file +
``os.replace``), so a killed scan leaves only whole records and resumes with nothing lost.
"""
import dataclasses
import json
import os
import tempfile
from pathlib import Path


def cell_path(out_dir, key):
    """Where the record of the cell ``key`` lives."""
    return Path(out_dir) / "cells" / f"{key}.json"


def write_json_atomic(path, data):
    """Write ``data`` as JSON to ``path`` via a temporary file in the same directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_record(path):
    """A finished cell record, or ``None`` if the file is missing or unreadable."""
    try:
        with open(path) as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "distances" in record else None


def write_manifest(out_dir, config, keys):
    """Record the configuration and the cell keys of the latest scan written to ``out_dir``."""
    data = dataclasses.asdict(config)
    data["scaling"] = data.pop("scalings")      # asdict already turned them into dicts
    write_json_atomic(Path(out_dir) / "manifest.json", dict(config=data, cells=list(keys)))


def read_manifest(out_dir):
    """The manifest of ``out_dir`` (ValueError if there is none or it is unreadable)."""
    try:
        with open(Path(out_dir) / "manifest.json") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise ValueError(f"{out_dir} holds no scan (no manifest.json)") from None
    except ValueError as exc:
        raise ValueError(f"{out_dir}/manifest.json is unreadable: {exc}") from None
