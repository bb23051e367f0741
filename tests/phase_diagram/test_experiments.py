"""The experiments of phase_diagram.experiments at tiny sizes, and their figure scripts."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from meanfield_dropout.runtime import results
from meanfield_dropout.experiments import QUICK_NOTE, reproduce
from phase_diagram.cli.main import main
from phase_diagram.experiments import (EXPERIMENTS, ConvergencePhasesSettings,
                                       PhaseDiagramSettings)
from phase_diagram.scan import load_config, run_scan

ROOT = Path(__file__).resolve().parents[2]


def test_registry_holds_every_experiment_in_the_order_of_reproduce_all():
    assert list(EXPERIMENTS) == ["teacher_student", "images_variants", "phase_diagram",
                                 "convergence", "sme", "mnist"]


def test_convergence_quick_outputs_and_replot(tmp_path):
    settings = ConvergencePhasesSettings.quick().replace(widths=(20, 40), repeats=2)
    done = reproduce(EXPERIMENTS["convergence"], tmp_path, settings=settings, quick=True,
                     progress=False, workers=2)
    assert [p.name for p in done.figures] == ["convergence_phases_quick.png"]
    assert done.figures[0].stat().st_size > 1000
    result = results.load(tmp_path / "convergence_phases_quick.npz")
    assert len(result.studies) == 5 and result.settings.repeats == 2
    for study in result.studies:
        for metrics in study.distances.values():
            for values in metrics.values():
                assert values.shape[:2] == (2, 2) and np.all(np.isfinite(values))
    done.figures[0].unlink()
    again = reproduce(EXPERIMENTS["convergence"], tmp_path, quick=True, replot=True)
    assert again.figures == done.figures and again.summary == done.summary
    assert done.figures[0].exists()


def test_phase_diagram_plots_existing_scan(tmp_path):
    scan = tmp_path / "scan"
    run_scan(load_config(ROOT / "examples" / "phase_scan_small.toml", allow_import=True), scan,
             workers=1, progress=False, allow_import=True)
    done = reproduce(EXPERIMENTS["phase_diagram"], tmp_path, quick=True, replot=True,
                     settings=PhaseDiagramSettings.quick().replace(scan_dir=scan))
    assert [p.name for p in done.figures] == ["phase_diagram_theory_quick.png",
                                              "phase_diagram_quick.png",
                                              "phase_diagram_panels_quick.png"]
    assert all(p.stat().st_size > 1000 for p in done.figures)
    assert done.summary == [QUICK_NOTE, f"phase diagram: 3/3 scalings decided, "
                                        f"1 agree with theory, 2 wrong ({scan})"]


def test_phase_diagram_replot_without_scan_is_refused(tmp_path):
    with pytest.raises(ValueError, match="replot needs a scan"):
        reproduce(EXPERIMENTS["phase_diagram"], tmp_path, quick=True, replot=True,
                  settings=PhaseDiagramSettings.quick().replace(scan_dir=tmp_path / "none"))


def test_reproduce_options_reach_the_experiment(tmp_path, capsys):
    assert main(["reproduce", "phase_diagram", "--quick", "--replot", "--scan-dir",
                 str(tmp_path / "none"), "--out-dir", str(tmp_path)]) == 2
    assert f"replot needs a scan in {tmp_path / 'none'}" in capsys.readouterr().err


def test_figure_scripts_run_as_scripts(tmp_path):
    """The script directory must not shadow the ``phase_diagram`` package; a missing cache
    is one line and exit status 2."""
    done = subprocess.run([sys.executable, str(ROOT / "figures" / "phase_diagram_figure.py"),
                           "--replot", "--quick", "--scan-dir", str(tmp_path / "none"),
                           "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "replot needs a scan" in done.stderr
    bad = subprocess.run([sys.executable, str(ROOT / "figures" / "convergence.py"), "--replot",
                          "--quick", "--out-dir", str(tmp_path / "empty")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "replot needs the cached results" in bad.stderr
