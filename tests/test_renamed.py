"""Renamed keywords, settings fields and options: the old spelling warns (FutureWarning naming
the new one) and gives the same result as the new one; giving both is refused."""
import warnings

import pytest

from meanfield_dropout.cli.main import parser as meanfield_parser
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
