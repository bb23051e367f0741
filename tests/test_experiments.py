"""The experiments of meanfield_dropout.experiments at tiny sizes (seconds each), through
reproduce, the cache and the figure scripts."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from meanfield_dropout.runtime import results
from meanfield_dropout.cli.main import main
from meanfield_dropout.experiments import EXPERIMENTS, QUICK_NOTE, reproduce
from meanfield_dropout.experiments import teacher_student as teacher_student_module
from meanfield_dropout.experiments.images_variants import ImagesVariantsSettings
from meanfield_dropout.experiments.sme import SmeSettings
from meanfield_dropout.experiments.teacher_student import TeacherStudentSettings

ROOT = Path(__file__).resolve().parents[1]

TINY_TEACHER = TeacherStudentSettings.quick().replace(
    widths=(20, 40), repeats=2, steps=30, early_step=10, data_points=30, trajectory_width=40,
    trajectory_every=5, loss_every=5)
TINY_IMAGES = ImagesVariantsSettings.quick().replace(keep_probs=(0.6, 0.9), width=40, steps=20,
                                                     repeats=2, loss_every=10)


def run(name, out_dir, settings=None, **options):
    return reproduce(EXPERIMENTS[name], out_dir, settings=settings, quick=True,
                     **dict(dict(progress=False, workers=1), **options))


def _assert_pngs(paths, out_dir):
    assert paths
    for path in paths:
        assert path.parent == Path(out_dir) and path.stem.endswith("_quick")
        assert path.suffix == ".png" and path.stat().st_size > 1000


def test_teacher_student_quick_outputs(tmp_path):
    done = run("teacher_student", tmp_path, TINY_TEACHER)
    _assert_pngs(done.figures, tmp_path)
    a = results.load(tmp_path / "teacher_student_quick.npz")
    assert done.cache == tmp_path / "teacher_student_quick.npz"
    assert a.settings.widths == (20, 40) and a.settings.steps == 30
    assert a.distance.shape == (2, 2, 3, 2)              # width, repeat, variant, step
    assert a.train_loss.shape == a.val_loss.shape == (2, 2, 4, 7)
    assert not a.diverged.any()
    assert np.all(np.isfinite(a.distance)) and np.all(a.distance > 0)
    assert np.all(np.isfinite(a.train_loss)) and np.all(np.isfinite(a.val_loss))
    assert a.trajectories.shape == (4, 7, 3, 21)         # variant, snapshot, neuron, p
    # coupled runs: every variant starts from the same particles
    assert np.all(a.trajectories[:, 0] == a.trajectories[0, 0])
    # the training loss falls for every variant
    assert np.all(a.train_loss[..., -1] < a.train_loss[..., 0])
    assert done.summary[0] == QUICK_NOTE
    assert len(done.summary) == 7 and all("slope" in line for line in done.summary[1:])


def test_teacher_student_replot_needs_no_recompute(tmp_path, monkeypatch):
    first = run("teacher_student", tmp_path, TINY_TEACHER)
    for path in tmp_path.glob("*.png"):
        path.unlink()

    def fail(*args, **kwargs):
        raise AssertionError("replot must not simulate")

    monkeypatch.setattr(teacher_student_module, "simulate", fail)
    again = run("teacher_student", tmp_path, replot=True)
    _assert_pngs(again.figures, tmp_path)
    assert again.summary == first.summary


@pytest.mark.parametrize("experiment, settings", [
    ("teacher_student", TINY_TEACHER.replace(widths=(20, 30), trajectory_width=20)),
    ("images_variants", TINY_IMAGES.replace(width=20))])
def test_same_seed_same_numbers_whatever_the_worker_count(experiment, settings, tmp_path):
    settings = settings.with_seed(3)
    run(experiment, tmp_path / "serial", settings, workers=1)
    run(experiment, tmp_path / "pool", settings, workers=2)
    serial = results.load(tmp_path / "serial" / f"{experiment}_quick.npz")
    pool = results.load(tmp_path / "pool" / f"{experiment}_quick.npz")
    assert serial.settings == pool.settings
    for key, value in vars(serial).items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, getattr(pool, key), err_msg=key)


def test_images_variants_quick_outputs(tmp_path):
    done = run("images_variants", tmp_path, TINY_IMAGES)
    _assert_pngs(done.figures, tmp_path)
    a = results.load(tmp_path / "images_variants_quick.npz")
    assert a.data.startswith("sklearn")
    assert a.train_points + a.test_points == 360   # 181 fours, 179 sevens
    assert a.test_risk.shape == a.train_risk.shape == (2, 2, 5, 3)
    assert np.all(np.isfinite(a.test_risk)) and np.all(a.test_risk > 0)
    # the logistic risk starts near log 2 (small initial predictor) and falls
    assert np.all(a.test_risk[..., -1] < a.test_risk[..., 0])
    assert np.all(np.abs(a.test_risk[..., 0] - np.log(2)) < 0.2)


def test_sme_quick_outputs_and_replot(tmp_path):
    quick = SmeSettings.quick()
    tiny = SmeSettings(
        quick.loss.replace(width=5, steps=40, repeats=2, n_train=30, n_test=20, loss_every=10),
        quick.order.replace(repeats=50, lrs=(0.4, 0.2), keep_probs=(0.7,), extrapolate=False),
        quick.alignment.replace(steps=40, eval_every=20, masks=10, baseline_samples=5,
                                n_train=30, width=5))
    done = run("sme", tmp_path, tiny, workers=2)
    _assert_pngs(done.figures, tmp_path)
    assert [p.name for p in done.figures] == ["sme_loss_quick.png", "sme_order_quick.png",
                                              "sme_alignment_quick.png"]
    result = results.load(tmp_path / "sme_quick.npz")
    assert result.order.study.errors.shape == (2, 1, 2)
    assert np.all(np.isfinite(result.order.study.errors))
    assert result.alignment.run.alpha_exact.shape == (3,)
    assert np.all(np.abs(result.alignment.run.alpha_exact) <= 1)
    assert result.settings.loss.width == 5
    for path in done.figures:
        path.unlink()
    again = run("sme", tmp_path, replot=True)
    _assert_pngs(again.figures, tmp_path)
    assert again.summary == done.summary


def test_unknown_setting_is_refused():
    with pytest.raises(ValueError, match="has no setting 'width'"):
        TeacherStudentSettings.quick().replace(width=10)


def test_teacher_student_dtype():
    with pytest.raises(ValueError, match="dtype must be one of"):
        TINY_TEACHER.replace(dtype="float16")
    result = teacher_student_module.run(TINY_TEACHER.replace(dtype="float32"), progress=False,
                                        workers=1)
    assert result.trajectories.dtype == np.float32
    assert np.all(np.isfinite(result.distance)) and np.all(result.distance > 0)


def test_trajectory_width_must_be_simulated():
    with pytest.raises(ValueError, match="trajectory_width"):
        TINY_TEACHER.replace(trajectory_width=30)


@pytest.mark.parametrize("argv, message", [
    (["reproduce", "bogus"], "NAME must be one of"),
    (["reproduce", "phase_diagram"], "NAME must be one of"),
    (["reproduce"], "give experiment NAMEs or --all"),
    (["reproduce", "--all", "sme"], "give experiment NAMEs or --all"),
    (["reproduce", "teacher_student", "--replot", "--quick", "--out-dir", "EMPTY"],
     "replot needs the cached results"),
    (["reproduce", "teacher_student", "--quick", "--seed", "-1", "--out-dir", "EMPTY"],
     "argument --seed: expected an integer >= 0, got '-1'"),
])
def test_cli_bad_input_exits_2(argv, message, tmp_path, capsys):
    argv = [str(tmp_path) if a == "EMPTY" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_figure_script_runs_as_a_script(tmp_path):
    """``figures/teacher_student.py --replot`` from a cached tiny run (exit 0, PNGs)."""
    run("teacher_student", tmp_path, TINY_TEACHER)
    done = subprocess.run([sys.executable, str(ROOT / "figures" / "teacher_student.py"),
                           "--quick", "--replot", "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "teacher_student: wrote" in done.stdout


def test_images_variants_reads_a_local_mnist_archive(tmp_path):
    rng = np.random.default_rng(0)
    labels = {"train": np.array([4, 7, 1] * 12), "test": np.array([7, 4, 3] * 4)}
    np.savez(tmp_path / "mnist.npz",
             **{f"x_{split}": rng.integers(0, 256, (y.size, 28, 28))
                for split, y in labels.items()},
             **{f"y_{split}": y for split, y in labels.items()})
    run("images_variants", tmp_path, TINY_IMAGES.replace(repeats=1, mnist=tmp_path / "mnist.npz"))
    a = results.load(tmp_path / "images_variants_quick.npz")
    assert a.data == "MNIST 4 vs 7"
    assert (a.train_points, a.test_points) == (24, 8)
    assert a.batch_size == 24          # capped at the training set
    assert np.all(np.isfinite(a.test_risk))
