"""phase_diagram.convergence: scalings as expressions of n, the converge command and the
five-phase check."""
import numpy as np
import pytest

from meanfield_dropout.runtime import results
from meanfield_dropout.convergence import ConvergenceStudy
from meanfield_dropout.data import toy
from meanfield_dropout.limits import LimitConstants, simulate_limit
from meanfield_dropout.network import network_data
from phase_diagram.cli.main import main
from phase_diagram.convergence import PHASE_STUDIES, phase_study, scaling_limit, scaling_study

WIDTHS = [100, 200, 400, 800, 1600]


def test_scaling_limit_gives_the_phase_and_its_constants():
    _, phase, constants = scaling_limit("0.5*n**-0.5", "0.7*n**-0.5")
    assert phase == "jump-poisson"
    assert constants["alpha"] == pytest.approx(0.5 / 0.7) and constants["beta"] == 0.0
    assert scaling_limit("0.5", "1/log(n)")[1:] == ("degenerate", None)


def test_scaling_study_compares_with_the_predicted_limit_unless_forced():
    tiny = dict(repeats=1, horizon=0.2, n_times=2, progress=False)
    study, phase = scaling_study("0.5*n**-0.5", "0.7*n**-0.5", [16, 32], **tiny)
    assert phase == "jump-poisson" and list(study.limits) == ["jump-poisson"]
    with pytest.raises(ValueError, match="pass --force"):
        scaling_study("0.5*n**-0.5", "0.7*n**-0.5", [16, 32], limits=["wgf"], **tiny)
    forced, _ = scaling_study("0.5*n**-0.5", "0.7*n**-0.5", [16, 32], limits=["wgf"],
                              force=True, **tiny)
    assert list(forced.limits) == ["wgf"]
    with pytest.raises(ValueError, match="no limit dynamics"):
        scaling_study("0.5", "1/log(n)", [16, 32], **tiny)


def test_cli_smoke(tmp_path, capsys):
    out = tmp_path / "converge.png"
    data = tmp_path / "converge.npz"
    assert main(["converge", "--master-lr", "0.5*n**-0.5", "--keep-prob", "0.7*n**-0.5",
                 "--widths", "16,32", "--repeats", "2", "--horizon", "0.3", "--n-times", "2",
                 "--out", str(out), "--data-out", str(data), "--no-progress"]) == 0
    assert out.stat().st_size > 0 and data.stat().st_size > 0
    assert "jump-poisson" in capsys.readouterr().out
    [study] = results.load(data)
    assert isinstance(study, ConvergenceStudy) and list(study.limits) == ["jump-poisson"]
    assert study.distances["jump-poisson"]["predictor"].shape == (2, 2, 2)


@pytest.mark.parametrize("args", [
    ("--master-lr", "0.5*n**-0.5", "--keep-prob", "0.7*n**-0.5", "--widths", "16"),
    ("--master-lr", "0.5*n**-0.5", "--keep-prob", "0.7*n**-0.5", "--widths", "16,32",
     "--limit", "wgf"),
    ("--master-lr", "__import__('os')", "--keep-prob", "0.7", "--widths", "16,32"),
    ("--master-lr", "0.5", "--keep-prob", "0.7", "--widths", "16,32", "--repeats", "0"),
])
def test_cli_bad_arguments_exit_2(tmp_path, args, capsys):
    assert main(["converge", *args, "--out", str(tmp_path / "x.png"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err and err.count("\n") == 0 and not (tmp_path / "x.png").exists()


# ---------------------------------------------------------------------------------------------
# Scientific checks (slow): run with ``python -m pytest -m slow tests/phase_diagram``
# ---------------------------------------------------------------------------------------------

def limit_gap(study, right, wrong, limit_particles=4000):
    """sup_t RMS predictor gap between two limits from one μ₀ sample of N particles."""
    data = toy()
    times = np.linspace(0.0, PHASE_STUDIES[right]["horizon"], 5)
    train = network_data(data.inputs, data.targets, activation="tanh")
    f = {name: simulate_limit(name, train, LimitConstants(**study.limits[name]), times=times,
                              limit_particles=limit_particles, seed=123).predictor
         for name in (right, wrong)}
    return float(np.max(np.sqrt(np.mean((f[right] - f[wrong]) ** 2, axis=1))))


@pytest.mark.slow
@pytest.mark.parametrize("phase", list(PHASE_STUDIES))
def test_dropout_converges_to_the_predicted_limit_only(phase):
    """Right limit: fitted slope < 0 with its 95% interval excluding 0. Wrong limit: the
    distance stays above the floor ½ sup_t ‖∫φ dμ_t^right − ∫φ dμ_t^wrong‖ at every width
    (half the gap between the two limits, measured with N = 4000 particles) and above the
    distance to the right limit at the largest width."""
    study = phase_study(phase, WIDTHS, repeats=3, seed=0, progress=False)
    fit = study.fits[phase]["predictor"]
    assert fit["slope_ci"][1] < 0, fit
    right = np.max(study.distances[phase]["predictor"][:, :, 1:], axis=2).mean(axis=0)
    for wrong in PHASE_STUDIES[phase]["wrong"]:
        floor = 0.5 * limit_gap(study, phase, wrong)
        dist = np.max(study.distances[wrong]["predictor"][:, :, 1:], axis=2).mean(axis=0)
        assert np.all(dist > floor), (wrong, dist, floor)
        assert dist[-1] > right[-1], (wrong, dist, right)
