"""One interface for data and results, through the public functions and the commands run
in-process: named data sets, the data each command and result says it used."""
import numpy as np
import pytest

import meanfield_dropout
from meanfield_dropout.cli.main import main
from meanfield_dropout.convergence import DEFAULT_DATA, CellSettings, measure_distances
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
    def cell(data=None):
        return measure_distances(16, 0.1, 0.5, CellSettings("wgf", 0.2, n_times=2, data=data),
                                 seed=3)

    by_default, by_name = cell(), cell("toy")
    np.testing.assert_array_equal(by_default["wgf"]["predictor"], by_name["wgf"]["predictor"])
    with pytest.raises(ValueError, match="data must be one of teacher-student, toy"):
        cell("digits")


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



def test_simulate_command_announces_a_long_run_before_its_bar(tmp_path, capsys, monkeypatch):
    """Above the threshold the estimate is the first line on stderr, before the bar; with
    --no-progress nothing is printed there."""
    from meanfield_dropout.runtime import memory
    monkeypatch.setattr(memory, "ANNOUNCE_SECONDS", 0.0)
    argv = ["simulate", "--width", "8", "--master-lr", "0.1", "--steps", "3", "--data", "toy",
            "--out", str(tmp_path / "run.npz")]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert err.startswith("simulate n=8, 3 steps of 1 rule(s): estimated 0 s (a cost model's "
                          "estimate, excluding compilation)\n") and "simulate n=8:" in err
    assert main(argv + ["--no-progress"]) == 0
    assert capsys.readouterr().err == ""

def test_help_gives_every_default_and_the_output_rule(capsys):
    from phase_diagram.cli.main import main as pd_main
    assert main(["demo", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--width WIDTH neurons n (default: 1000)" in text
    assert "--seed SEED seed of the initialisation and the masks (default: 0)" in text
    assert "default demo.png in the current directory" in text
    assert pd_main(["--help"]) == 0
    assert "-o/--out FILE is the one file a command writes" in \
        " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("old, new", [
    (["classify", "--tau", "1/n", "--keep", "0.5"], ["classify", "--master-lr", "1/n",
                                                      "--keep-prob", "0.5"]),
])
def test_old_spellings_warn_and_act_as_the_new_flags(old, new, capsys):
    from phase_diagram.cli.main import main as pd_main
    assert pd_main(new) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert pd_main(old) == 0
    again = capsys.readouterr()
    assert again.out == captured.out
    assert "warning: --tau is now --master-lr; the old spelling will be removed" in again.err
    assert "warning: --keep is now --keep-prob" in again.err
    assert pd_main(["classify", "--keep", "0.5"]) == 2
    assert "required: --master-lr" in capsys.readouterr().err


def test_one_rule_for_outputs_and_no_progress_where_a_bar_shows(capsys):
    from phase_diagram.cli.main import parser as pd_parser
    from meanfield_dropout.cli.main import parser as mf_parser
    for top in (mf_parser(), pd_parser()):
        commands = top._subparsers._group_actions[0].choices
        for name, command in commands.items():
            flags = {f for action in command._actions for f in action.option_strings}
            visible = {f for action in command._actions for f in action.option_strings
                       if action.help != "==SUPPRESS=="}
            assert "--output" not in visible and "--quiet" not in visible, name
            if "--out" in visible and name not in ("scan",):
                assert "-o" in flags, name
            if name not in ("classify", "plot", "theory", "cache"):   # no bar shows
                assert "--no-progress" in flags, name


def test_results_print_compactly_and_become_tidy_tables(tmp_path):
    from meanfield_dropout.convergence import convergence_study
    from meanfield_dropout.limits import simulate_limit
    from meanfield_dropout.network import network_data
    data = toy()
    run = meanfield_dropout.simulate(data.inputs, data.targets, width=6, master_lr=0.1, steps=4,
                                     variants=("dropout", "gd"), keep_prob=0.5,
                                     val_inputs=data.val_inputs, val_targets=data.val_targets,
                                     progress=False)
    text = repr(run)
    assert text.startswith("SimulationResult(") and len(text) < 800 and "array(" not in text
    assert "float64[6, 5]" in text
    table = run.to_frame()
    assert len(table) == 2 * len(run.loss_steps)
    assert set(table.columns) >= {"variant", "step", "time", "train_loss", "val_loss", "width"}
    gd = table[table.variant == "gd"]
    np.testing.assert_allclose(gd.train_loss, run.train_loss["gd"])
    limit = simulate_limit("wgf", network_data(data.inputs, data.targets, activation="tanh"),
                           times=[0.0, 0.1], limit_particles=8, seed=0)
    assert limit.to_frame().shape[0] == 2 and repr(limit).startswith("LimitResult(limit='wgf'")
    study = convergence_study(lambda n: 0.1, lambda n: 0.5, [8, 16],
                              CellSettings("wgf", 0.2, n_times=2), repeats=2, progress=False)
    assert "ConvergenceStudy(" in repr(study) and len(repr(study)) < 800
    frame = study.to_frame()
    # series x metric x width x repeat x time
    assert len(frame) == 1 * 2 * 2 * 2 * 2 and set(frame.data) == {"toy"}
    sub = frame[(frame.metric == "predictor") & (frame.width == 16) & (frame.repeat == 1)]
    np.testing.assert_allclose(sub.distance, study.distances["wgf"]["predictor"][1, 1])
    meanfield_dropout.save(study, tmp_path / "study.npz")
    again = meanfield_dropout.load(tmp_path / "study.npz")
    assert again.settings["data"] == "toy"


def test_to_frame_without_pandas_says_how_to_install_it(monkeypatch):
    import builtins
    from meanfield_dropout.runtime import tables
    real = builtins.__import__

    def no_pandas(name, *args, **kwargs):
        if name == "pandas":
            raise ImportError("No module named 'pandas'")
        return real(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_pandas)
    with pytest.raises(ImportError, match=r"pip install meanfield-dropout\[table\]"):
        tables.frame([dict(a=1)])


def test_caches_load_through_the_public_api_in_a_fresh_process(tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    code = ("import meanfield_dropout, sys; r = meanfield_dropout.load(sys.argv[1]); "
            "print(type(r).__name__)")
    proc = subprocess.run([sys.executable, "-c", code, str(root / "figures" / "sme.npz")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "SmeResult"


def test_default_outputs_never_overwrite_tracked_files(monkeypatch, capsys):
    from pathlib import Path
    from meanfield_dropout.cli.options import default_output, tracked_files
    root = Path(__file__).resolve().parents[1]
    if "demo.png" not in tracked_files(root / "figures"):
        pytest.skip("not run from the package's git repository")
    with pytest.raises(ValueError, match="figures/demo.png, tracked"):
        default_output(root / "figures" / "demo.png", "--out")
    assert default_output(root / "figures" / "demo_new.png", "--out").name == "demo_new.png"
    monkeypatch.chdir(root)
    assert main(["reproduce", "teacher_student", "--replot"]) == 2
    assert "give --out-dir explicitly" in capsys.readouterr().err
    assert main(["demo", "--help"]) == 0
    assert "default demo.png in the current directory" in \
        " ".join(capsys.readouterr().out.split())
