"""Renamed keywords, settings fields and options: the old spelling warns (FutureWarning naming
the new one) and gives the same result as the new one; giving both is refused."""
import warnings

import numpy as np
import pytest

from meanfield_dropout import cost_model
from meanfield_dropout.cli.main import parser as meanfield_parser
from meanfield_dropout.convergence import CellSettings, convergence_study
from meanfield_dropout.data import teacher_student
from meanfield_dropout.experiments.mnist import MnistSettings
from meanfield_dropout.experiments.sme import LossCurvesSettings

#: (settings class, old field, new field, a valid value)
SETTINGS = [
    (MnistSettings, "log_every", "loss_every", 50),
    (LossCurvesSettings, "record_every", "loss_every", 10),
]

#: (command line with the new option, old option) of the meanfield-dropout commands
OPTIONS = [
    (["sme", "--loss-every", "7"], "--record-every"),
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
    cell = dict(limit_particles=80, n_times=3, data_points=20, dim=3, dt=0.01)
    args = (40, 0.5, 10, {"wgf": dict(alpha=0.2)}, 1.0)
    expected = new_only(cost_model.cell_seconds, *args, w2_particles=40, **cell)
    with pytest.warns(FutureWarning, match="w2_points= is now w2_particles="):
        assert cost_model.cell_seconds(*args, w2_points=40, **cell) == expected
    with pytest.warns(FutureWarning, match="w2_points= is now w2_particles="):
        assert cost_model.distance_seconds(40, 80, w2_points=40, data_points=20) == \
            cost_model.distance_seconds(40, 80, w2_particles=40, data_points=20)
