"""One interface (issue 24), through the public functions and the commands run in-process:
named data sets, the data each command and result says it used."""
import numpy as np
import pytest

import meanfield_dropout
from meanfield_dropout.cli.main import main
from meanfield_dropout.convergence import DEFAULT_DATA, measure_distances
from meanfield_dropout.data import DATASETS, data_label, load_dataset, teacher_student, toy


def test_one_registry_names_the_paper_problem_and_the_toy_apart():
    assert set(DATASETS) >= {"teacher-student", "toy", "mnist47"}
    paper, small = load_dataset("teacher-student"), load_dataset("toy")
    assert paper.inputs.shape == (500, 20) and small.inputs.shape == (40, 4)
    np.testing.assert_array_equal(paper.inputs, teacher_student(seed=0).inputs)
    np.testing.assert_array_equal(small.targets, toy(seed=0).targets)
    assert DEFAULT_DATA == "toy"
    assert data_label("toy") == "toy" and data_label(small) == "arrays (m = 40, d = 4)"


def test_measure_distances_takes_a_data_name_and_defaults_to_the_toy():
    common = dict(alpha=None, beta=None, tau=None, horizon=0.2, seed=3, n_times=2)
    by_default = measure_distances(16, 0.1, 0.5, "wgf", **common)
    by_name = measure_distances(16, 0.1, 0.5, "wgf", data="toy", **common)
    np.testing.assert_array_equal(by_default["wgf"]["predictor"], by_name["wgf"]["predictor"])
    with pytest.raises(ValueError, match="data must be one of teacher-student, toy"):
        measure_distances(16, 0.1, 0.5, "wgf", data="digits", **common)


def test_simulate_command_says_and_stores_its_data(tmp_path, capsys):
    out = tmp_path / "run.npz"
    assert main(["simulate", "--width", "8", "--master-lr", "0.1", "--steps", "3",
                 "--data", "toy", "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "data toy, width 8, seed 0, 3 steps (horizon T = 0.3)" in text
    result = meanfield_dropout.SimulationResult.load(out)
    assert result.settings["data"] == "toy" and result.final["dropout"].shape == (8, 5)
    assert main(["simulate", "--width", "8", "--master-lr", "0.1", "--steps", "3", "--data",
                 "toy", "--dim", "3", "--out", str(out)]) == 2
    assert "--dim and --data-points set the teacher-student problem" in \
        capsys.readouterr().err
    assert main(["simulate", "--width", "8", "--master-lr", "0.1", "--steps", "3", "--data",
                 "digits", "--out", str(out)]) == 2
    assert "expected one of teacher-student, toy, mnist47" in capsys.readouterr().err
