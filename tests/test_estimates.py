"""Cost estimates printed before long runs: every reproduction (Python and both command lines,
with or without --no-progress), the SME runs and the curvature diagnostics. The runs are
stopped right after their estimate, so no test here runs an experiment."""
import dataclasses
import importlib
from pathlib import Path

import numpy as np
import pytest

from meanfield_dropout.cli.main import main
from meanfield_dropout.engine import validation_data
from meanfield_dropout.engine_plan import (Dynamics, Recording, plan_simulation,
                                           simulation_seconds)
from meanfield_dropout.experiments import EXPERIMENTS, announce, reproduce
from meanfield_dropout.experiments import images_variants, teacher_student
from meanfield_dropout.network import network_data
from meanfield_dropout.runtime import memory, runner
from meanfield_dropout.runtime.memory import announce_cost, announced, format_duration
from meanfield_dropout.data import teacher_student as teacher_student_data

ROOT = Path(__file__).resolve().parents[1]
TAIL = " (a cost model's estimate, excluding compilation)"
TINY_TEACHER = teacher_student.TeacherStudentSettings.quick().replace(
    widths=(20, 40), repeats=2, steps=30, early_step=10, data_points=30, trajectory_width=40,
    loss_every=5)


class Stopped(ValueError):
    """Raised by a patched run: the work would start here."""


def _stopping_run(seen, capsys):
    """A run that records what stderr held when it was called, then stops."""
    def run(settings, **options):
        seen.append(capsys.readouterr().err)
        raise Stopped("stopped where the work starts")
    return run


def _line(experiment, settings, stem, workers):
    total, wall, processes = experiment.estimated_seconds(settings, workers)
    share = f" on {processes} workers ({format_duration(total)} of one core)" \
        if processes > 1 else ""
    return f"{stem}: estimated {format_duration(wall)}{share}{TAIL}\n"


@pytest.mark.parametrize("progress", [True, False])
def test_reproduce_prints_its_estimate_before_the_run(monkeypatch, capsys, tmp_path, progress):
    seen = []
    experiment = dataclasses.replace(EXPERIMENTS["teacher_student"],
                                     run=_stopping_run(seen, capsys))
    with pytest.raises(Stopped):
        reproduce(experiment, tmp_path, settings=TINY_TEACHER, quick=True, workers=2,
                  progress=progress)
    assert seen == [_line(experiment, TINY_TEACHER, "teacher_student_quick", 2)]
    assert not list(tmp_path.iterdir())


def test_teacher_student_estimate_is_the_simulate_model_of_its_runs():
    """Each run's estimate is simulation_seconds of the plan simulate makes for it."""
    s = TINY_TEACHER
    data = teacher_student_data(dim=s.dim, data_points=s.data_points, seed=s.seed)
    train = network_data(data.inputs, data.targets)
    validation = validation_data(data.val_inputs, data.val_targets, train, loss="square",
                                 activation="relu")

    def planned(width, loss_every):
        dynamics = Dynamics(s.master_lr, s.steps, s.keep_prob, teacher_student.VARIANTS,
                            "mean_field", None, None, 0, 1e6)
        return simulation_seconds(plan_simulation(train, dynamics,
                                                  Recording(loss_every, (), None, 32),
                                                  width=width, validation=validation))
    runs = [planned(n, s.loss_every) for n in s.widths for _ in range(s.repeats)]
    runs.append(planned(s.trajectory_width, s.steps))
    assert sorted(teacher_student.task_seconds(s)) == pytest.approx(sorted(runs), rel=1e-12)


def test_images_estimate_counts_gd_at_the_first_keep_probability_only():
    s = images_variants.ImagesVariantsSettings.quick().replace(keep_probs=(0.6, 0.9),
                                                               repeats=2)
    first, other, *rest = images_variants.task_seconds(s)
    assert len(rest) == 2 and first / other == pytest.approx(5 / 4)
    assert images_variants.task_seconds(s.replace(steps=2 * s.steps))[1] > 1.9 * other


def test_the_wall_time_puts_the_longest_tasks_first_on_the_free_worker():
    experiment = dataclasses.replace(EXPERIMENTS["teacher_student"],
                                     cost=lambda settings: [1.0, 3.0, 2.0, 2.0])
    assert experiment.estimated_seconds(None, 2) == (8.0, 4.0, 2)
    assert experiment.estimated_seconds(None, 8) == (8.0, 3.0, 4)
    assert experiment.estimated_seconds(None, 1) == (8.0, 8.0, 1)


def test_every_reproduction_has_an_estimate(monkeypatch):
    from phase_diagram.experiments import EXPERIMENTS as ALL
    monkeypatch.chdir(ROOT)                     # the phase diagram's scan file is relative
    for name, experiment in ALL.items():
        for preset in ("quick", "full"):
            settings = getattr(experiment.settings, preset)()
            total, wall, processes = experiment.estimated_seconds(settings, 2)
            assert 0 < total / 2 <= wall * (1 + 1e-12) <= total * (1 + 2e-12), (name, preset)
            assert processes in (1, 2), (name, preset)
            quick = experiment.estimated_seconds(experiment.settings.quick(), 2)[0]
            assert preset == "quick" or total > quick, name


@pytest.mark.parametrize("flags", [[], ["--no-progress"]])
def test_reproduce_command_prints_the_estimate_first(monkeypatch, capsys, tmp_path, flags):
    seen = []
    monkeypatch.setitem(EXPERIMENTS, "teacher_student", dataclasses.replace(
        EXPERIMENTS["teacher_student"], run=_stopping_run(seen, capsys)))
    argv = ["reproduce", "teacher_student", "--quick", "--workers", "1", "--out-dir",
            str(tmp_path)] + flags
    assert main(argv) == 2
    settings = EXPERIMENTS["teacher_student"].settings.quick()
    assert seen == [_line(EXPERIMENTS["teacher_student"], settings, "teacher_student_quick", 1)]
    assert "stopped where the work starts" in capsys.readouterr().err


def test_phase_diagram_reproduce_prints_the_estimate_first(monkeypatch, capsys, tmp_path):
    from phase_diagram import experiments
    from phase_diagram.cli.main import main as pd_main
    seen = []
    monkeypatch.setitem(experiments.EXPERIMENTS, "convergence", dataclasses.replace(
        experiments.EXPERIMENTS["convergence"], run=_stopping_run(seen, capsys)))
    assert pd_main(["reproduce", "convergence", "--quick", "--workers", "2", "--no-progress",
                    "--out-dir", str(tmp_path)]) == 2
    settings = experiments.ConvergencePhasesSettings.quick()
    assert seen == [_line(experiments.EXPERIMENTS["convergence"], settings,
                          "convergence_phases_quick", 2)]
    # one study's cost is the operations its cells announce, at the nominal rate
    scaling_cost = experiments.convergence_seconds(settings.replace(repeats=1))
    assert experiments.convergence_seconds(settings) == pytest.approx(
        [2 * c for c in scaling_cost])


def test_bad_input_fails_before_the_estimate(capsys, tmp_path):
    out = ["--out-dir", str(tmp_path)]
    assert main(["reproduce", "teacher_student", "--quick", "--paper"] + out) == 2
    assert main(["reproduce", "teacher_student", "--workers", "0"] + out) == 2
    assert main(["reproduce", "nothing", "--quick"] + out) == 2
    err = capsys.readouterr().err
    assert "estimated" not in err and err.count("\n") >= 3
    # a run that would not fit in memory is refused before its cells are counted
    assert main(["reproduce", "mnist", "--quick", "--repeats", "100000000"] + out) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the MNIST run (width 500, 200000000 cells of 300 steps) "
                          "needs") and "estimated" not in err


def test_a_caller_that_announced_the_whole_run_silences_its_parts(capsys):
    with announced():
        announce_cost(1e6, "a part")
        with announced():
            pass
        announce_cost(1e6, "another part")
    assert capsys.readouterr().err == ""
    announce_cost(1e6, "the whole run", threshold=0)
    assert capsys.readouterr().err == f"the whole run: estimated 11.6 days{TAIL}\n"
    announce(EXPERIMENTS["teacher_student"], TINY_TEACHER, workers=1)
    assert capsys.readouterr().err == _line(EXPERIMENTS["teacher_student"], TINY_TEACHER,
                                            "teacher_student", 1)


# --- the SME runs and the curvature diagnostics: above the threshold, with their bar ---

def _tiny_sme_problem():
    from meanfield_dropout.sme import init_params, make_problem
    rng = np.random.default_rng(0)
    problem = make_problem(rng.standard_normal((5, 2)), rng.standard_normal(5), 3, 0.7)
    return problem, init_params(problem)


def test_sme_runs_announce_their_estimate_before_they_start(monkeypatch, capsys):
    from meanfield_dropout.sme import cost, equations, weak_order
    alignment = importlib.import_module("meanfield_dropout.sme.alignment")  # not the function
    problem, theta = _tiny_sme_problem()
    monkeypatch.setattr(memory, "ANNOUNCE_SECONDS", 0.0)

    def stop(*args, **kwargs):
        raise Stopped("stopped where the work starts")
    monkeypatch.setattr(equations, "compile_once", stop)
    with pytest.raises(Stopped):
        equations.simulate_sme(problem, theta, 0.1, 20, sde_step=0.05, order=2, repeats=3,
                               loss_every=5, progress=True)
    expected = cost.run_seconds(problem, "sme2", 20, 3, 5, 2)
    assert capsys.readouterr().err == (f"order-2 SME: 3 run(s) of 20 steps: estimated "
                                       f"{format_duration(expected)}{TAIL}\n")
    assert expected == pytest.approx(3 * (40 * cost.replica_step_seconds(problem, "sme2")
                                          + 5 * cost.replica_step_seconds(problem, "loss")))
    with pytest.raises(Stopped):
        equations.simulate_dropout(problem, theta, 0.1, 20, progress=False)
    assert capsys.readouterr().err == ""

    monkeypatch.setattr(weak_order, "_one_setting", stop)
    with pytest.raises(Stopped):
        weak_order.weak_error_study(problem, theta, [0.2, 0.1], [0.7, 0.9], time=0.4,
                                    repeats=4, control_variate=False)
    plan = weak_order.step_plan([0.1, 0.2], 0.4, 0.1 / 16, True)   # h = min(lrs)/16
    expected = cost.weak_order_seconds(problem, plan, [0.7, 0.9], 4, True)
    assert capsys.readouterr().err.startswith(    # then the bar
        f"weak_error_study of 4 settings x 4 runs: estimated {format_duration(expected)}"
        f"{TAIL}\n")
    with pytest.raises(ValueError, match="lrs must hold"):
        weak_order.weak_error_study(problem, theta, [0.1], [0.7], repeats=4)
    assert capsys.readouterr().err == ""

    monkeypatch.setattr(alignment, "simulate_dropout", stop)
    with pytest.raises(Stopped):
        alignment.alignment_along_training(problem, theta, 0.1, 10, 5, n_masks=4,
                                           n_baseline=2)
    expected = cost.alignment_seconds(problem, 10, 5, 4, 2)
    assert capsys.readouterr().err == (f"alignment_along_training: 10 steps, a checkpoint every 5: "
                                       f"estimated {format_duration(expected)}{TAIL}\n")
    with pytest.raises(ValueError, match="n_masks"):
        alignment.alignment_along_training(problem, theta, 0.1, 10, 5, n_masks=1)
    assert capsys.readouterr().err == ""


def test_curvature_diagnostics_announce_their_estimate(monkeypatch, capsys):
    from meanfield_dropout import curvature
    from meanfield_dropout.network import init_particles
    rng = np.random.default_rng(1)
    X = init_particles(6, 3, seed=2)
    Z, y = rng.standard_normal((8, 3)), rng.standard_normal(8)
    monkeypatch.setattr(memory, "ANNOUNCE_SECONDS", 0.0)

    def stop(*args, **kwargs):
        raise Stopped("stopped where the work starts")
    monkeypatch.setattr(curvature, "_hvp", stop)
    monkeypatch.setattr(curvature, "_sharpness_terms", stop)
    with pytest.raises(Stopped):
        curvature.sharpness(X, Z, y, iterations=5, points=4)
    expected = curvature.sharpness_seconds(6, 4, X.shape[1], 5)
    assert capsys.readouterr().err == (f"sharpness of 5 products: estimated "
                                       f"{format_duration(expected)}{TAIL}\n")
    with pytest.raises(Stopped):
        curvature.batch_sharpness(X, Z, y, batch_size=4, draws=7)
    expected = curvature.batch_sharpness_seconds(6, 4, X.shape[1], 7)
    assert expected * memory.NOMINAL_RATE == pytest.approx(8 * 7 * 4 * 6 * 4)
    assert capsys.readouterr().err == (f"batch_sharpness of 7 draws: estimated "
                                       f"{format_duration(expected)}{TAIL}\n")


def test_dense_sme_diagnostics_announce_their_estimate(monkeypatch, capsys):
    from meanfield_dropout.sme import cost
    covariance = importlib.import_module("meanfield_dropout.sme.covariance")
    hessian = importlib.import_module("meanfield_dropout.sme.hessian")
    problem, theta = _tiny_sme_problem()
    monkeypatch.setattr(memory, "ANNOUNCE_SECONDS", 0.0)

    def stop(*args, **kwargs):
        raise Stopped("stopped where the work starts")
    for module, name in ((hessian, "_dense_hessian"), (covariance, "_noise_parts"),
                         (covariance, "dropout_gradients"), (covariance, "run_kernel")):
        monkeypatch.setattr(module, name, stop)
    D = problem.n_params
    for call, expected, what in (
            (lambda: hessian.modified_loss_hessian(problem, theta),
             cost.hessian_seconds(problem), f"modified_loss_hessian of D = {D}"),
            (lambda: covariance.noise_covariance(problem, theta),
             cost.covariance_seconds(problem), f"noise_covariance of D = {D}"),
            (lambda: covariance.empirical_covariance(problem, theta, 9),
             cost.empirical_covariance_seconds(problem, 9), "empirical_covariance of 9 masks"),
            (lambda: covariance.sample_noise(problem, theta, 5),
             cost.sample_noise_seconds(problem, 5), "sample_noise of 5 draws")):
        with pytest.raises(Stopped):
            call()
        assert capsys.readouterr().err == f"{what}: estimated {format_duration(expected)}{TAIL}\n"
    assert cost.alignment_seconds(problem, 10, 5, 9, 2) > 3 * (
        cost.hessian_seconds(problem) + cost.covariance_seconds(problem)
        + cost.empirical_covariance_seconds(problem, 9))       # three checkpoints and more
    with pytest.raises(ValueError, match="n_masks"):
        covariance.empirical_covariance(problem, theta, 1)
    assert capsys.readouterr().err == ""


def test_experiment_functions_announce_a_long_run_with_their_bar(monkeypatch, capsys):
    """Called directly, an experiment's run prints its estimate first when above the
    threshold and progress is on; inside reproduce the caller's estimate stands alone."""
    monkeypatch.setattr(memory, "ANNOUNCE_SECONDS", 0.0)

    def stop(*args, **kwargs):
        raise Stopped("stopped where the work starts")
    monkeypatch.setattr(runner, "run_unordered", stop)
    with pytest.raises(Stopped):
        teacher_student.run(TINY_TEACHER, workers=2)
    assert capsys.readouterr().err.startswith(
        _line(EXPERIMENTS["teacher_student"], TINY_TEACHER, "teacher_student", 2))
    with pytest.raises(Stopped):
        teacher_student.run(TINY_TEACHER, workers=2, progress=False)
    assert capsys.readouterr().err == ""
    with pytest.raises(Stopped):
        reproduce(EXPERIMENTS["teacher_student"], "unused", settings=TINY_TEACHER, workers=2)
    err = capsys.readouterr().err           # the estimate once, then the bar
    assert err.startswith(_line(EXPERIMENTS["teacher_student"], TINY_TEACHER,
                                "teacher_student", 2)) and err.count("estimated") == 1


def test_random_baseline_announces_its_samples_once_the_spectra_are_known(monkeypatch,
                                                                           capsys):
    from meanfield_dropout.sme import cost, random_baseline
    monkeypatch.setattr(memory, "ANNOUNCE_SECONDS", 0.0)
    H = np.diag([3.0, 2.0, 1.0, 0.0])               # rank 3
    sigma = np.diag([1.0, 1.0, 0.0, 0.0])           # rank 2
    values = random_baseline(H, sigma, n_samples=6)
    assert values.shape == (6,)
    expected = cost.baseline_seconds(4, 3, 2, 6)
    assert expected * memory.NOMINAL_RATE == pytest.approx(10 * 4 ** 3 + 6 * 2 * 4 * (6 + 9 + 4))
    assert capsys.readouterr().err == (f"random_baseline of 6 samples: estimated "
                                       f"{format_duration(expected)}{TAIL}\n")


def test_on_a_remote_cluster_the_estimate_is_the_seconds_of_one_core(capsys, tmp_path):
    seen = []
    experiment = dataclasses.replace(EXPERIMENTS["teacher_student"],
                                     run=_stopping_run(seen, capsys))
    with pytest.raises(Stopped):
        reproduce(experiment, tmp_path, settings=TINY_TEACHER, workers=2,
                  run_options=dict(dask="tcp://scheduler:8786"))
    assert seen == [_line(experiment, TINY_TEACHER, "teacher_student", 1)]
