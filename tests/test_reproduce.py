"""The figure scripts of ``meanfield_dropout.reproduce`` at tiny sizes (seconds each)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from meanfield_dropout import reproduce
from meanfield_dropout.cli import main

ROOT = Path(__file__).resolve().parents[1]

TINY_TEACHER = dict(widths=(20, 40), repeats=2, steps=30, early_step=10, data_points=30,
                    trajectory_width=40, trajectory_every=5, loss_every=5)
TINY_IMAGES = dict(keep_probs=(0.6, 0.9), width=40, steps=20, repeats=2, loss_every=10)


def _cache(path):
    with np.load(path) as data:
        return json.loads(str(data["settings"])), {k: data[k] for k in data.files}


def _assert_pngs(paths, out_dir):
    assert paths
    for path in paths:
        assert path.parent == Path(out_dir) and path.stem.endswith("_quick")
        assert path.suffix == ".png" and path.stat().st_size > 1000


def test_teacher_student_quick_outputs(tmp_path):
    paths = reproduce.teacher_student(tmp_path, quick=True, sizes=TINY_TEACHER, progress=False,
                                workers=1)
    _assert_pngs(paths, tmp_path)
    settings, a = _cache(tmp_path / "teacher_student_quick.npz")
    assert settings["widths"] == [20, 40] and settings["steps"] == 30
    assert a["distance"].shape == (2, 2, 3, 2)              # width, repeat, variant, step
    assert a["train_loss"].shape == a["val_loss"].shape == (2, 2, 4, 7)
    assert not a["diverged"].any()
    assert np.all(np.isfinite(a["distance"])) and np.all(a["distance"] > 0)
    assert np.all(np.isfinite(a["train_loss"])) and np.all(np.isfinite(a["val_loss"]))
    assert a["trajectories"].shape == (4, 7, 3, 21)         # variant, snapshot, neuron, p
    # coupled runs: every variant starts from the same particles
    assert np.all(a["trajectories"][:, 0] == a["trajectories"][0, 0])
    # the training loss falls for every variant
    assert np.all(a["train_loss"][..., -1] < a["train_loss"][..., 0])


def test_teacher_student_replot_needs_no_recompute(tmp_path, monkeypatch):
    reproduce.teacher_student(tmp_path, quick=True, sizes=TINY_TEACHER, progress=False,
                                workers=1)
    for path in tmp_path.glob("*.png"):
        path.unlink()

    def fail(*args, **kwargs):
        raise AssertionError("replot must not simulate")

    monkeypatch.setattr(reproduce, "simulate", fail)
    paths = reproduce.teacher_student(tmp_path, quick=True, replot=True)
    _assert_pngs(paths, tmp_path)


@pytest.mark.parametrize("experiment, sizes", [
    ("teacher_student", dict(TINY_TEACHER, widths=(20, 30), trajectory_width=20)),
    ("images_variants", dict(TINY_IMAGES, width=20))])
def test_same_seed_same_numbers_whatever_the_worker_count(experiment, sizes, tmp_path):
    run = getattr(reproduce, experiment)
    run(tmp_path / "serial", quick=True, sizes=sizes, seed=3, progress=False, workers=1)
    run(tmp_path / "pool", quick=True, sizes=sizes, seed=3, progress=False, workers=2)
    serial = _cache(tmp_path / "serial" / f"{experiment}_quick.npz")[1]
    pool = _cache(tmp_path / "pool" / f"{experiment}_quick.npz")[1]
    assert serial.keys() == pool.keys()
    for key in serial:
        np.testing.assert_array_equal(serial[key], pool[key], err_msg=key)


def test_images_variants_quick_outputs(tmp_path):
    paths = reproduce.images_variants(tmp_path, quick=True, sizes=TINY_IMAGES, progress=False,
                                      workers=1)
    _assert_pngs(paths, tmp_path)
    settings, a = _cache(tmp_path / "images_variants_quick.npz")
    assert settings["data"].startswith("sklearn")
    assert settings["train_points"] + settings["test_points"] == 360   # 181 fours, 179 sevens
    assert a["test_risk"].shape == a["train_risk"].shape == (2, 2, 5, 3)
    assert np.all(np.isfinite(a["test_risk"])) and np.all(a["test_risk"] > 0)
    # the logistic risk starts near log 2 (small initial predictor) and falls
    assert np.all(a["test_risk"][..., -1] < a["test_risk"][..., 0])
    assert np.all(np.abs(a["test_risk"][..., 0] - np.log(2)) < 0.2)


def test_convergence_quick_outputs_and_replot(tmp_path):
    sizes = dict(widths=(20, 40), repeats=2)
    paths = reproduce.convergence(tmp_path, quick=True, sizes=sizes, progress=False)
    _assert_pngs(paths, tmp_path)
    settings, a = _cache(tmp_path / "convergence_phases_quick.npz")
    studies = reproduce._decode(json.loads(str(a["studies"])))
    assert len(studies) == 5 and settings["repeats"] == 2
    for study in studies:
        for metrics in study["distances"].values():
            for values in metrics.values():
                assert values.shape[:2] == (2, 2) and np.all(np.isfinite(values))
    paths[0].unlink()
    assert reproduce.convergence(tmp_path, quick=True, replot=True) == paths
    assert paths[0].exists()


def test_phase_diagram_plots_existing_scan(tmp_path):
    from phase_diagram.scan import load_config, run_scan

    scan = tmp_path / "scan"
    run_scan(load_config(ROOT / "examples" / "phase_scan_small.toml"), scan, workers=1,
             progress=False)
    paths = reproduce.phase_diagram(tmp_path, quick=True, scan_dir=scan, progress=False)
    _assert_pngs(paths, tmp_path)
    assert [p.name for p in paths] == ["phase_diagram_theory_quick.png",
                                       "phase_diagram_quick.png",
                                       "phase_diagram_panels_quick.png"]


def test_phase_diagram_replot_without_scan_is_refused(tmp_path):
    with pytest.raises(ValueError, match="replot needs a scan"):
        reproduce.phase_diagram(tmp_path, quick=True, replot=True, scan_dir=tmp_path / "none")


def test_sme_quick_outputs(tmp_path):
    tiny = {"sme": ["--width", "5", "--steps", "40", "--trials", "2", "--n-train", "30",
                    "--n-test", "20", "--record-every", "10"],
            "sme-order": ["--runs", "50", "--lrs", "0.4,0.2", "--keep-probs", "0.7",
                          "--no-extrapolate"],
            "alignment": ["--steps", "40", "--eval-every", "20", "--masks", "10",
                          "--baseline-samples", "5", "--n-train", "30", "--width", "5"]}
    paths = reproduce.sme(tmp_path, quick=True, sizes=tiny)
    _assert_pngs(paths, tmp_path)
    with np.load(tmp_path / "sme_order_quick.npz") as data:
        assert data["errors"].shape == (2, 1, 2) and np.all(np.isfinite(data["errors"]))
    with np.load(tmp_path / "sme_alignment_quick.npz") as data:
        assert data["alpha_exact"].shape == (3,)
        assert np.all(np.abs(data["alpha_exact"]) <= 1)
    with pytest.raises(ValueError, match="replot"):
        reproduce.sme(tmp_path, quick=True, replot=True)


def test_unknown_size_key_is_refused(tmp_path):
    with pytest.raises(ValueError, match="sizes has an unknown key 'width'"):
        reproduce.teacher_student(tmp_path, quick=True, sizes={"width": 10})


def test_trajectory_width_must_be_simulated(tmp_path):
    with pytest.raises(ValueError, match="trajectory_width"):
        reproduce.teacher_student(tmp_path, quick=True,
                                  sizes=dict(TINY_TEACHER, trajectory_width=30))


@pytest.mark.parametrize("argv, message", [
    (["reproduce", "bogus"], "NAME must be one of"),
    (["reproduce"], "give experiment NAMEs or --all"),
    (["reproduce", "--all", "sme"], "give experiment NAMEs or --all"),
    (["reproduce", "teacher_student", "--replot", "--quick", "--out-dir", "EMPTY"],
     "replot needs the cached results"),
])
def test_cli_bad_input_exits_2(argv, message, tmp_path, capsys):
    argv = [str(tmp_path) if a == "EMPTY" else a for a in argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_figure_script_runs_as_a_script(tmp_path):
    """``figures/teacher_student.py --replot`` from a cached tiny run (exit 0, PNGs)."""
    reproduce.teacher_student(tmp_path, quick=True, sizes=TINY_TEACHER, progress=False,
                                workers=1)
    done = subprocess.run([sys.executable, str(ROOT / "figures" / "teacher_student.py"),
                           "--quick", "--replot", "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "teacher_student: wrote" in done.stdout
    bad = subprocess.run([sys.executable, str(ROOT / "figures" / "convergence.py"), "--replot",
                          "--quick", "--out-dir", str(tmp_path / "empty")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "replot needs the cached results" in bad.stderr


def test_phase_figure_script_imports_the_package(tmp_path):
    """The script directory must not shadow the ``phase_diagram`` package."""
    done = subprocess.run([sys.executable, str(ROOT / "figures" / "phase_diagram_figure.py"),
                           "--replot", "--quick", "--scan-dir", str(tmp_path / "none"),
                           "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "replot needs a scan" in done.stderr


def test_images_variants_reads_a_local_mnist_archive(tmp_path):
    rng = np.random.default_rng(0)
    labels = {"train": np.array([4, 7, 1] * 12), "test": np.array([7, 4, 3] * 4)}
    np.savez(tmp_path / "mnist.npz",
             **{f"x_{split}": rng.integers(0, 256, (y.size, 28, 28))
                for split, y in labels.items()},
             **{f"y_{split}": y for split, y in labels.items()})
    sizes = dict(TINY_IMAGES, repeats=1)
    reproduce.images_variants(tmp_path, quick=True, sizes=sizes, mnist=tmp_path / "mnist.npz",
                              progress=False, workers=1)
    settings, a = _cache(tmp_path / "images_variants_quick.npz")
    assert settings["data"] == "MNIST 4 vs 7"
    assert (settings["train_points"], settings["test_points"]) == (24, 8)
    assert settings["batch_size"] == 24          # capped at the training set
    assert np.all(np.isfinite(a["test_risk"]))
