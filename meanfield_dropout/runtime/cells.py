"""The resumable keyed cell store: one directory of cell records, and the loop that fills it.

An experiment made of independent *cells* (a scan's (scaling, width, repeat), a phase map's
(point, width, repeat), an MNIST (q, repeat)) keeps them in a :class:`CellStore` and runs them
with :func:`run_cells`. A cell is any object with

* ``key`` — a string, the name of its record file (:func:`cell_key` hashes an identity);
* ``identity`` — a JSON-able dict of everything that defines the cell, its seed included or
  derived from it (:func:`cell_seed`), so that its numbers depend on nothing else.

Layout of a store directory ``DIR``:

* ``DIR/manifest.json`` — ``{"kind", "config", ...}``: what the cells belong to, and entries
  of the owner's (e.g. the list of cell keys);
* ``DIR/cells/<key>.json`` (a dict record) or ``DIR/cells/<key>.npz`` (a registered result
  dataclass, :mod:`meanfield_dropout.runtime.results`) — one record per finished cell, with
  the cell's key and identity;
* ``DIR/claims/<key>.lock`` — the claim of the process computing the cell.

Guarantees:

* **Atomic records.** A record is written to a temporary file and renamed over its place
  (:func:`~meanfield_dropout.runtime.results.atomic_file`): a killed or interrupted run leaves
  whole records or none, never a half-written one (an interrupted run also removes its
  stopped writers' temporary files: :meth:`CellStore.discard_partial`).
* **Validated records.** A record counts as finished only if it holds the key and identity of
  its cell and passes the owner's ``check``; anything else (truncated, edited, another cell's,
  another version's) is recomputed by :func:`run_cells`, with a :class:`CellWarning`.
* **Resumable.** A rerun computes only the cells without a valid record; nothing finished is
  lost or computed again.
* **Claims.** A cell is computed under an exclusive ``flock`` on its claim file, released by
  the operating system however the process ends (``kill -9`` included), so two runs into one
  directory compute each cell once: a run that finds a cell claimed does its other cells,
  then waits for the claim and takes the cell only if no valid record appeared.
* **One configuration per directory.** :meth:`CellStore.open` refuses a directory whose
  manifest belongs to another kind or configuration, with a message saying how to start anew.
* **Same numbers everywhere.** Cells are keyed and seeded by their identity and every worker
  runs with one Numba and one BLAS thread (:mod:`meanfield_dropout.runtime.runner`), so the
  records do not depend on the worker count, the order or the backend (process pool or Dask).

Claims need a file system with working ``flock`` (local disks; NFS emulates it with POSIX
locks on Linux); where ``fcntl`` is missing (not POSIX), claims always succeed and two runs
into one directory must not run at the same time. Dask workers without access to ``DIR``
return their records, which :func:`run_cells` writes here.
"""
import contextlib
import dataclasses
import hashlib
import json
import os
import socket
import warnings
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from . import results
from .memory import announce_cost
from .runner import Interrupted, run_unordered

try:
    import fcntl
except ImportError:                # not POSIX: no claims
    fcntl = None

__all__ = ["CellStore", "CellWarning", "cell_key", "cell_seed", "read_json", "run_cells",
           "write_json"]

CODECS = ("json", "npz")


class CellWarning(UserWarning):
    """Something in a cell directory was not as expected (e.g. invalid records, recomputed)."""


def _normalized(value):
    """``value`` as it reads back from JSON (tuples become lists, keys strings)."""
    return json.loads(json.dumps(value, sort_keys=True))


def read_json(path):
    """The JSON object (a dict) in ``path``; None if it is missing, unreadable or not an
    object."""
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def write_json(path, value):
    """Write ``value`` as JSON to ``path``, atomically
    (:func:`~meanfield_dropout.runtime.results.atomic_file`)."""
    with results.atomic_file(path, "w") as handle:
        json.dump(value, handle, indent=1, sort_keys=True)


def cell_key(identity, root_seed):
    """The key of the cell ``identity`` in a run seeded by ``root_seed``: 24 hex digits of the
    SHA-256 of both, so that a key names one cell of one run only."""
    source = json.dumps(dict(identity, seed=root_seed), sort_keys=True)
    return hashlib.sha256(source.encode()).hexdigest()[:24]


def cell_seed(root_seed, identity):
    """A 64-bit seed from ``SeedSequence(root_seed, spawn_key=hash(identity))``: keyed by the
    cell's identity, not by its position in a list, a worker or a completion order."""
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).digest()
    spawn_key = tuple(int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4))
    state = np.random.SeedSequence(root_seed, spawn_key=spawn_key).generate_state(2, np.uint32)
    return int(state[0]) | (int(state[1]) << 32)


@results.register
@dataclasses.dataclass(frozen=True)
class CellRecord:
    """The ``.npz`` record of a cell: its key and identity beside its result."""

    key: str
    identity: dict
    value: object


class Claim:
    """An exclusive claim on one cell, held until :meth:`release` or the process's end."""

    def __init__(self, fd):
        self._fd = fd

    def release(self):
        """Give the cell up (idempotent)."""
        if self._fd is not None:
            if fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


class CellStore:
    """A directory of keyed, validated cell records for one configuration.

    Parameters
    ----------
    directory : str or path-like
    kind : str
        What the directory holds, for the manifest and the messages (``"scan"``,
        ``"phase map"``, ``"MNIST run"``).
    config : dict
        The JSON-able configuration the cells belong to.
    codec : {"json", "npz"}
        Records are dicts written as JSON, or registered result dataclasses written by
        :func:`meanfield_dropout.runtime.results.save`.
    check : callable, optional
        ``check(value, cell) -> None or str``: why a record whose key and identity match is
        still not a finished cell (e.g. a distance that is not a finite number). A
        module-level function: the store travels to the workers.

    Notes
    -----
    Nothing touches the disk until :meth:`open`. The lock files of claims are left in place
    (removing one could let two processes lock different files of the same name).
    """

    def __init__(self, directory, kind, config, *, codec="json", check=None):
        if codec not in CODECS:
            raise ValueError(f"codec must be one of {CODECS}, got {codec!r}")
        self.directory = Path(directory)
        self.kind = kind
        self.config = _normalized(config)
        self.codec = codec
        self.check = check

    @property
    def manifest_path(self):
        """``DIR/manifest.json``."""
        return self.directory / "manifest.json"

    def open(self, **entries):
        """Create the directory with its manifest, or check that the manifest there is of
        this kind and configuration; then write the manifest with ``entries`` (JSON-able).

        Raises
        ------
        ValueError
            One line, before any work: ``directory`` is a file, or holds cells of another
            kind or configuration (the message says how to start a new one).
        """
        if self.directory.exists() and not self.directory.is_dir():
            raise ValueError(f"{self.directory} is a file, not a {self.kind} directory")
        if self.manifest_path.exists():
            stored = read_json(self.manifest_path)
            if stored is None:
                held = "no readable manifest"
            elif stored.get("kind", self.kind) != self.kind:
                held = f"cells of another kind ({stored['kind']!r})"
            else:
                held = None if stored.get("config") == self.config else \
                    "cells of another configuration"
            if held:
                raise ValueError(f"{self.directory} holds {held} (see its manifest.json); give "
                                 f"another directory to start a new {self.kind}, or delete "
                                 f"this one")
        self.write_manifest(**entries)
        return self

    def write_manifest(self, **entries):
        """Write ``{"kind", "config", **entries}`` to the manifest, atomically."""
        write_json(self.manifest_path, dict(entries, kind=self.kind, config=self.config))

    def path(self, key):
        """The record file of the cell ``key``."""
        return self.directory / "cells" / f"{key}.{self.codec}"

    def read(self, cell):
        """``(value, problem)`` for ``cell``: its record and None if it is a valid finished
        record, else None and why not (``"missing"`` when there is no record file)."""
        path = self.path(cell.key)
        if not path.exists():
            return None, "missing"
        key, identity, value = self._load(path)
        if key is None:
            return None, "is unreadable, truncated or not a record"
        if key != cell.key:
            return None, f"holds the record of another cell ({key!r})"
        if _normalized(identity) != _normalized(cell.identity):
            return None, "its identity differs from the cell's"
        problem = None if self.check is None else self.check(value, cell)
        return (None, problem) if problem else (value, None)

    def _load(self, path):
        """``(key, identity, value)`` of a record file (``key`` None if unreadable)."""
        if self.codec == "npz":
            try:
                record = results.load(path, CellRecord)
            except ValueError:
                return None, None, None
            return record.key, record.identity, record.value
        record = read_json(path)
        if record is None or not isinstance(record.get("key"), str):
            return None, None, None
        return record["key"], record.get("identity"), record

    def scan(self, cells, action="are recomputed"):
        """The valid records of ``cells`` and the problems of the others.

        Warns once (:class:`CellWarning`) about the invalid records, saying that they
        ``action``.

        Returns
        -------
        values : dict
            key → value of every cell with a valid record.
        problems : dict
            key → problem of every other cell (``"missing"`` for no record).
        """
        values, problems = {}, {}
        for cell in cells:
            value, problem = self.read(cell)
            if problem is None:
                values[cell.key] = value
            else:
                problems[cell.key] = problem
        invalid = {key: problem for key, problem in problems.items() if problem != "missing"}
        if invalid:
            key, problem = next(iter(invalid.items()))
            warnings.warn(f"{len(invalid)} cell record(s) in {self.directory / 'cells'} are "
                          f"invalid and {action} (e.g. {key}.{self.codec} {problem})",
                          CellWarning, stacklevel=3)
        return values, problems

    def write(self, cell, value):
        """Write the record of ``cell`` atomically and return the value as :meth:`read` gives
        it back (a JSON record gets the cell's ``key`` and ``identity`` entries).

        Temporary files left by an interrupted writer of the same cell are removed first:
        only the holder of the cell's claim writes it.
        """
        path = self.path(cell.key)
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            stale.unlink(missing_ok=True)
        if self.codec == "npz":
            results.save(CellRecord(cell.key, cell.identity, value), path)
            return value
        record = _normalized(dict(value, key=cell.key, identity=cell.identity))
        write_json(path, record)
        return record

    def discard_partial(self):
        """Remove the temporary files that stopped writers left in ``DIR/cells``, except those
        of cells a live process claims (it may still be writing them)."""
        for partial in (self.directory / "cells").glob(".*.tmp"):
            claim = self.claim(partial.name[1:].split(".", 1)[0])
            if claim is not None:
                with claim:
                    partial.unlink(missing_ok=True)

    def claim_path(self, key):
        """The lock file of the cell ``key``."""
        return self.directory / "claims" / f"{key}.lock"

    def claim(self, key):
        """A :class:`Claim` on the cell ``key``, or None if a live process holds it."""
        path = self.claim_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        return Claim(fd)

    def claimant(self, key):
        """``"PID HOST"`` of the last process that claimed the cell ``key`` ("" if none)."""
        try:
            return self.claim_path(key).read_text().strip()
        except OSError:
            return ""

    def wait_for_release(self, key):
        """Block until no process holds the claim on the cell ``key``."""
        if fcntl is None:
            return
        try:
            fd = os.open(self.claim_path(key), os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
        finally:
            os.close(fd)             # closing releases the shared lock at once


#: Outcomes of a cell task (:func:`_compute`).
COMPUTED, CLAIMED, DONE_ELSEWHERE = "computed", "claimed", "done elsewhere"


def _compute(cell, store, function, args):
    """Worker task: ``(outcome, value)`` of ``function(cell, *args)``, computed under the
    cell's claim and written to the store (when there is one)."""
    if store is None:
        return COMPUTED, function(cell, *args)
    claim = store.claim(cell.key)
    if claim is None:
        return CLAIMED, store.claimant(cell.key)
    with claim:
        value, problem = store.read(cell)
        if problem is None:
            return DONE_ELSEWHERE, value
        return COMPUTED, store.write(cell, function(cell, *args))


def run_cells(cells, function, store=None, *, args=(), workers=1, dask=None,
              dask_timeout=None, always_spawn=True, progress=True, desc="cells", cost=None):
    """Compute every cell of ``cells`` without a valid record in ``store``.

    Parameters
    ----------
    cells : sequence
        Objects with ``key`` and ``identity`` (see the module docstring), in the order to run
        them (e.g. the longest first); the keys must be distinct.
    function : callable
        ``function(cell, *args) -> value``, module-level (it runs in worker processes): a
        JSON-able dict for a ``"json"`` store, a registered result dataclass for ``"npz"``.
    store : CellStore, optional
        Opened (:meth:`CellStore.open`). None: nothing is kept, every cell runs.
    args : tuple
        Further arguments of ``function``, the same for every cell.
    workers, dask, dask_timeout, always_spawn
        The backend (:func:`meanfield_dropout.runtime.runner.run_unordered`).
    progress : bool
        A tqdm bar of finished cells.
    desc : str
        The bar's label.
    cost : callable, optional
        ``cost(cell)``: the cell's estimated seconds on one core. The cells to compute then
        run longest first (no worker is left with a long cell at the end) and their total is
        announced when long (:func:`meanfield_dropout.runtime.memory.announce_cost`).

    Returns
    -------
    counts : dict
        ``total``; ``skipped`` (valid records found), ``computed`` (by this run),
        ``by_other`` (by another run into the same directory) cells; ``invalid``, the records
        found invalid and recomputed.
    values : dict
        key → value of every cell.

    Raises
    ------
    Interrupted
        On Ctrl-C, once the workers are stopped: "interrupted; N of M cells kept in DIR,
        rerun to resume" (or "interrupted" without a store).
    """
    cells = list(cells)
    if store is None:
        values, problems = {}, {cell.key: "missing" for cell in cells}
    else:
        values, problems = store.scan(cells)
    counts = dict(total=len(cells), skipped=len(values), computed=0, by_other=0,
                  invalid=sum(p != "missing" for p in problems.values()))
    pending = [cell for cell in cells if cell.key in problems]
    if cost is not None and pending:
        seconds = {cell.key: cost(cell) for cell in pending}
        pending.sort(key=lambda cell: -seconds[cell.key])
        announce_cost(sum(seconds.values()), f"the {desc} of {len(pending)} cells",
                      workers if dask is None or dask == "local" else 1)
    try:
        with tqdm(total=len(cells), initial=len(values), unit="cell", desc=desc,
                  disable=not progress) as bar:
            while pending:
                claimed = []
                tasks = [(cell, store, function, args) for cell in pending]
                # closed on any exception: the workers are stopped before it goes on
                with contextlib.closing(run_unordered(
                        _compute, tasks, workers, dask=dask, dask_timeout=dask_timeout,
                        always_spawn=always_spawn)) as outcomes:
                    for index, (outcome, value) in outcomes:
                        cell = pending[index]
                        if outcome == CLAIMED:
                            claimed.append(cell)
                            continue
                        if outcome == COMPUTED:
                            if store is not None and not store.path(cell.key).exists():
                                value = store.write(cell, value)  # a worker without this disk
                            counts["computed"] += 1
                        else:
                            counts["by_other"] += 1
                        values[cell.key] = value
                        bar.update(1)
                pending = _after_claims(claimed, store, counts, values, bar)
    except KeyboardInterrupt:
        if store is None:
            raise Interrupted("interrupted") from None
        store.discard_partial()
        # records a stopped worker wrote before its result reached this process count too
        kept = len(values) + sum(store.read(cell)[1] is None for cell in pending
                                 if cell.key not in values)
        raise Interrupted(f"interrupted; {kept} of {len(cells)} cells kept in "
                          f"{store.directory}, rerun to resume") from None
    return counts, values


def _after_claims(claimed, store, counts, values, bar):
    """Wait for the cells another process claimed; return those it left unfinished."""
    left = []
    for cell in claimed:
        store.wait_for_release(cell.key)
        value, problem = store.read(cell)
        if problem is None:
            counts["by_other"] += 1
            values[cell.key] = value
            bar.update(1)
        else:
            left.append(cell)
    return left
