"""Renamed keywords, settings fields and options: the old spelling warns (FutureWarning naming
the new one) and gives the same result as the new one; giving both is refused."""
import warnings

from pathlib import Path

import numpy as np
import pytest

from meanfield_dropout import cost_model
from meanfield_dropout.cli.main import parser as meanfield_parser
from meanfield_dropout.convergence import CellSettings, convergence_study
from meanfield_dropout.data import teacher_student
from meanfield_dropout.experiments.mnist import MnistSettings
from meanfield_dropout.experiments.sme import LossCurvesSettings, SmeResult, WeakOrderSettings
from meanfield_dropout.runtime import results
from meanfield_dropout.sme import equations, weak_order
from meanfield_dropout.sme.model import init_params, make_problem

#: (settings class, old field, new field, a valid value)
SETTINGS = [
    (MnistSettings, "log_every", "loss_every", 50),
    (LossCurvesSettings, "record_every", "loss_every", 10),
    (LossCurvesSettings, "trials", "repeats", 3),
    (WeakOrderSettings, "runs", "repeats", 50),
]

#: (command line with the new option, old option) of the meanfield-dropout commands
OPTIONS = [
    (["sme", "--loss-every", "7"], "--record-every"),
    (["sme", "--repeats", "3"], "--trials"),
    (["sme-order", "--repeats", "30"], "--runs"),
]


def new_only(callable_, *args, **kwargs):
    """``callable_(*args, **kwargs)``, failing on any FutureWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        return callable_(*args, **kwargs)


@pytest.mark.parametrize("cls, old, new, value", SETTINGS)
def test_old_settings_field_warns_and_sets_the_new_one(cls, old, new, value):
    expected = new_only(cls, **{new: value})
    with pytest.warns(FutureWarning, match=f"{old}= is now {new}="):
        assert cls(**{old: value}) == expected
    with pytest.warns(FutureWarning, match=f"{old}= is now {new}="):
        assert cls().replace(**{old: value}) == expected
    with pytest.raises(TypeError, match=f"give {new}= only"):
        cls(**{old: value, new: value})


@pytest.mark.parametrize("argv, old", OPTIONS)
def test_old_option_warns_and_sets_the_new_one(argv, old):
    parser = meanfield_parser()
    expected = new_only(parser.parse_args, argv)
    with pytest.warns(FutureWarning, match=f"{old} is now {argv[1]}"):
        assert parser.parse_args([argv[0], old, *argv[2:]]) == expected


def test_limit_particles_factor_is_limit_factor():
    settings = CellSettings(["wgf"], 0.2, data=teacher_student(dim=3, data_points=10,
                                                                teacher_width=2, seed=0),
                            n_times=2)
    args = (lambda n: 2.0 / n, lambda n: 0.5, [10, 20], settings)
    expected = new_only(convergence_study, *args, repeats=1, limit_factor=2, progress=False)
    with pytest.warns(FutureWarning, match="limit_particles_factor= is now limit_factor="):
        study = convergence_study(*args, repeats=1, limit_particles_factor=2, progress=False)
    assert study.settings == expected.settings and study.settings["limit_factor"] == 2
    for key, metrics in expected.distances.items():
        for metric, values in metrics.items():
            np.testing.assert_array_equal(study.distances[key][metric], values)


def test_w2_points_is_w2_particles():
    cell = dict(limit_particles=80, n_times=3, data_shape=(20, 3), dt=0.01)
    args = (40, 0.5, 10, {"wgf": dict(alpha=0.2)}, 1.0)
    expected = new_only(cost_model.cell_seconds, *args, w2_particles=40, **cell)
    with pytest.warns(FutureWarning, match="w2_points= is now w2_particles="):
        assert cost_model.cell_seconds(*args, w2_points=40, **cell) == expected
    with pytest.warns(FutureWarning, match="w2_points= is now w2_particles="):
        assert cost_model.distance_seconds(40, 80, w2_points=40, data_points=20) == \
            cost_model.distance_seconds(40, 80, w2_particles=40, data_points=20)


@pytest.mark.parametrize("function, args", [
    (equations.simulate_dropout, (0.1, 5)),
    (equations.simulate_sme, (0.1, 5)),
    (weak_order.weak_error_study, ([0.2, 0.1], [0.7])),
])
def test_n_runs_is_repeats(function, args):
    rng = np.random.default_rng(0)
    problem = make_problem(rng.standard_normal((4, 2)), rng.standard_normal(4), 3, 0.7)
    theta0 = init_params(problem, seed=0)
    expected = new_only(function, problem, theta0, *args, repeats=3, seed=1)
    with pytest.warns(FutureWarning, match="n_runs= is now repeats="):
        result = function(problem, theta0, *args, n_runs=3, seed=1)
    for key, value in vars(expected).items():
        np.testing.assert_array_equal(getattr(result, key), value)


def test_paper_caches_with_the_old_field_names_load():
    figures = Path(__file__).resolve().parents[1] / "figures"
    sme = new_only(results.load, figures / "sme.npz", SmeResult)
    assert (sme.loss.settings.repeats, sme.loss.settings.loss_every) == (6, 20)
    assert sme.order.settings.repeats == sme.order.study.repeats == 2000
    assert new_only(results.load, figures / "mnist.npz").settings.loss_every == 100
