"""Cheap cells and cell functions for the tests of the cell store and the runner.

``noisy_cell`` draws a few numbers from the cell's own seed (:func:`cell_seed` of its
identity), so its record depends on the cell only. Environment:

* ``CELL_TEST_KILL``: key of a cell whose computation kills its own process (SIGKILL);
* ``CELL_TEST_INTERRUPT``: key of a cell whose computation raises KeyboardInterrupt (as Ctrl-C
  in the process running it);
* ``CELL_TEST_MARKERS``: directory where every computed cell appends a line to ``<key>.count``.
"""
import dataclasses
import os
import signal
from pathlib import Path

import numpy as np

from meanfield_dropout.runtime import results
from meanfield_dropout.runtime.cells import cell_key, cell_seed

ROOT_SEED = 11


@dataclasses.dataclass(frozen=True)
class ToyCell:
    """A cell with an index and a size."""

    index: int
    size: int

    @property
    def identity(self):
        return dict(index=self.index, size=self.size)

    @property
    def key(self):
        return cell_key(self.identity, ROOT_SEED)


def toy_cells(count=6, size=4):
    return [ToyCell(index, size) for index in range(count)]


def _marks(cell):
    if cell.key == os.environ.get("CELL_TEST_KILL"):
        os.kill(os.getpid(), signal.SIGKILL)
    if cell.key == os.environ.get("CELL_TEST_INTERRUPT"):
        raise KeyboardInterrupt
    markers = os.environ.get("CELL_TEST_MARKERS")
    if markers:
        with open(Path(markers) / f"{cell.key}.count", "a") as handle:
            handle.write("1\n")


def noisy_cell(cell, scale):
    """A JSON record: ``size`` numbers drawn from the cell's seed, times ``scale``."""
    _marks(cell)
    rng = np.random.default_rng(cell_seed(ROOT_SEED, cell.identity))
    return dict(values=(scale * rng.standard_normal(cell.size)).tolist())


@results.register
@dataclasses.dataclass(frozen=True)
class ToyResult:
    """An ``.npz`` record of a toy cell."""

    values: np.ndarray


def noisy_result(cell, scale):
    """:func:`noisy_cell` as a registered result dataclass."""
    return ToyResult(np.asarray(noisy_cell(cell, scale)["values"]))


def values_problem(record, cell):
    """The store's content check of a JSON toy record."""
    values = record.get("values")
    if not isinstance(values, list) or len(values) != cell.size:
        return f"does not hold {cell.size} values"
    return None
