"""meanfield_dropout's command line: the SME commands, the shared helpers (one list parser,
one error handler, --version) and the installed version."""
import argparse
import importlib.metadata
import subprocess
import sys

import pytest

import meanfield_dropout
import phase_diagram
from meanfield_dropout.runtime import results
from meanfield_dropout.cli.options import ListOf, Parser, run_main
from meanfield_dropout.cli.main import main
from meanfield_dropout.engine import DivergenceError


@pytest.mark.parametrize("argv", [
    ["sme", "--width", "4", "--steps", "6", "--repeats", "2", "--n-train", "30", "--n-test", "10",
     "--loss-every", "3", "--lr", "0.1"],
    ["sme-order", "--lrs", "0.5,0.25", "--keep-probs", "0.5", "--time", "0.5", "--repeats", "20"],
    ["alignment", "--width", "3", "--steps", "4", "--eval-every", "2", "--n-train", "20",
     "--n-test", "5", "--masks", "10", "--baseline-samples", "3"],
])
def test_commands_write_png(tmp_path, argv):
    out = tmp_path / "fig.png"
    assert main(argv + ["--out", str(out)]) == 0
    assert out.exists() and out.stat().st_size > 0
    cached = results.load(out.with_suffix(".npz"))
    width = int(argv[argv.index("--width") + 1]) if "--width" in argv else 4
    assert cached.settings.width == width and cached.settings.seed == 0


def test_bad_argument_exit_code(tmp_path, capsys):
    code = main(["sme", "--keep-prob", "1.5", "--steps", "2", "--out", str(tmp_path / "x.png")])
    assert code == 2
    assert "keep_prob must be in (0, 1]" in capsys.readouterr().err
    assert main(["sme-order", "--lrs", "0.3,abc", "--out", str(tmp_path / "y.png")]) == 2
    assert "argument --lrs: expected a comma-separated list of numbers" in \
        capsys.readouterr().err


def test_one_list_parser_for_ints_numbers_and_names():
    assert ListOf(int)("16, 32,64") == [16, 32, 64]
    assert ListOf(float)("0.5,1e-2") == [0.5, 0.01]
    assert ListOf(str, ("gd", "ram"))("ram,gd") == ["ram", "gd"]
    for parse, text in ((ListOf(int), "16,x"), (ListOf(int), ""), (ListOf(float), ",,"),
                        (ListOf(str, ("gd",)), "gd,pn")):
        with pytest.raises(argparse.ArgumentTypeError, match="comma-separated list"):
            parse(text)


@pytest.mark.parametrize("error, prefix", [
    (ValueError("width must be >= 1"), "error: width must be >= 1"),
    (DivergenceError(7, "gd"), "diverged: variant 'gd' diverged at step 7"),
    (RuntimeError("worker died\nbadly"), "failed: worker died badly"),
    (FileNotFoundError(2, "No such file or directory", "x.npz"), "error: [Errno 2]"),
])
def test_one_error_handler_gives_one_line_and_status_2(error, prefix, capsys):
    def fail(args):
        raise error

    parser = Parser(prog="test")
    parser.set_defaults(run=fail)
    assert run_main(parser, []) == 2
    err = capsys.readouterr().err
    assert err.startswith(prefix) and len(err.strip().splitlines()) == 1


def test_version_flag_and_metadata(capsys):
    expected = importlib.metadata.version("meanfield-dropout")
    assert meanfield_dropout.__version__ == phase_diagram.__version__ == expected
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"python -m meanfield_dropout {expected}"
    done = subprocess.run([sys.executable, "-m", "phase_diagram", "--version"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == f"python -m phase_diagram {expected}"


def test_the_commands_import_matplotlib_and_scipy_stats_only_when_used():
    code = ("import sys, meanfield_dropout.cli.main, phase_diagram.cli.main\n"
            "print(sorted(m for m in sys.modules if m.partition('.')[0] == 'matplotlib'\n"
            "             or m.startswith('scipy.stats')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr
    from meanfield_dropout import plots
    from phase_diagram import plots as phase_plots
    for package in (plots, phase_plots):
        assert set(package.__all__) <= set(dir(package))
        assert all(getattr(package, name) is not None for name in package.__all__)
        with pytest.raises(AttributeError, match="has no attribute 'no_such_figure'"):
            package.no_such_figure
