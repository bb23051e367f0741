"""Every tutorial of ``docs/tutorials`` runs to the end at small settings.

The tutorials are jupytext percent-format scripts; the site renders their executed notebooks
(``docs/tutorials/*.ipynb``, checked against the scripts when the site is built). Here each
script runs in-process with ``MEANFIELD_DROPOUT_TUTORIAL_SMALL=1``, which each tutorial reads to
shrink its widths, steps and repeats, so an API change that breaks a tutorial fails the suite.
"""
import runpy
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TUTORIALS = sorted((Path(__file__).resolve().parent.parent / "docs" / "tutorials")
                   .glob("[0-9][0-9]_*.py"))
#: Optional packages a tutorial imports beyond the package's own dependencies.
NEEDS = {"04_scan_table": "pandas"}


def test_tutorials_found():
    assert [path.stem[:2] for path in TUTORIALS] == ["01", "02", "03", "04", "05", "06"]


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda path: path.stem)
def test_tutorial_runs(path, monkeypatch, tmp_path):
    if path.stem in NEEDS:
        pytest.importorskip(NEEDS[path.stem])
    monkeypatch.setenv("MEANFIELD_DROPOUT_TUTORIAL_SMALL", "1")
    monkeypatch.chdir(tmp_path)            # anything a tutorial writes lands here
    plt.close("all")
    namespace = runpy.run_path(str(path), run_name="tutorial")
    if "SMALL" in namespace:
        assert namespace["SMALL"], "the tutorial did not read MEANFIELD_DROPOUT_TUTORIAL_SMALL"
    figures = plt.get_fignums()
    plt.close("all")
    assert figures, f"{path.name} drew no figure"
