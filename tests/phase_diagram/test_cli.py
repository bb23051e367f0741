"""Command line of phase_diagram: classify, theory, scan/plot, and bad input (exit status 2)."""
from pathlib import Path

import pytest

from phase_diagram.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def test_classify_prints_phase_constants_and_point(capsys):
    assert main(["classify", "--master-lr", "0.5*n**-1.5", "--keep-prob", "1/n", "--width",
                 "1000"]) == 0
    out = capsys.readouterr().out
    assert "phase: penalized-wgf" in out
    assert "beta = lim (1-q_n)/(n q_n) = 1" in out
    assert "(0.2857, 0.4286, 0.2857)" in out
    assert "simplex point at n=1000" in out


def test_classify_degenerate_names_the_cause(capsys):
    assert main(["classify", "--master-lr", "0.5", "--keep-prob", "1/log(n)"]) == 0
    out = capsys.readouterr().out
    assert "phase: degenerate" in out and "reason: alpha = inf" in out


@pytest.mark.parametrize("argv, message", [
    (["classify", "--master-lr", "0.5*n**", "--keep-prob", "1/n"], "malformed tau expression"),
    (["classify", "--master-lr", "os.system('x')", "--keep-prob", "1/n"], "may be called"),
    (["classify", "--master-lr", "1/n", "--keep-prob", "0"], "must be positive"),
    (["classify", "--master-lr", "exp(1000)", "--keep-prob", "1"], "cannot be evaluated"),
    (["classify", "--master-lr", "(-n)**0.5", "--keep-prob", "1"], "fractional power"),
    (["classify", "--master-lr", "+" * 5000 + "n", "--keep-prob", "1"], "nested too deeply"),
    (["classify", "--master-lr", "1/n", "--keep-prob", "1/n", "--width", "0"], "integer >= 1"),
    (["classify", "--keep-prob", "1/n"], "required"),
    (["scan", "missing.toml", "--out-dir", "OUT"], "cannot read"),
    (["scan", "examples/phase_scan_small.toml", "--out-dir", "OUT", "--workers", "0"],
     "integer >= 1"),
    (["plot", "no_such_dir", "-o", "OUT/x.png"], "no such directory"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_gives_one_line_and_status_2(argv, message, monkeypatch, capsys, tmp_path):
    """In-process (``main``); ``tests/test_bad_input.py`` has the full table and the
    subprocess checks."""
    monkeypatch.chdir(ROOT)
    assert main([str(tmp_path / "out") if a == "OUT" else a.replace("OUT/", f"{tmp_path}/")
                 for a in argv]) == 2
    assert not (tmp_path / "out").exists()
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


@pytest.mark.parametrize("body, message", [
    ("widths = []\n[[scaling]]\ntau = '1/n'\nkeep = '1/n'\n", "widths"),
    ("widths = [0, 8]\n[[scaling]]\ntau = '1/n'\nkeep = '1/n'\n", "width must be"),
    ("widths = [8, 16]\ncolour = 1\n[[scaling]]\ntau = '1/n'\nkeep = '1/n'\n", "unknown key"),
    ("widths = [8, 16]\n[[scaling]]\ntau = '1/n +'\nkeep = '1/n'\n", "malformed"),
    ("widths = [8, 16]\n", "at least one [[scaling]]"),
    ("widths = [8, 16\n", "malformed TOML"),
    ("widths = [8, 16]\n[options]\nwhen = 1979-05-27\n[[scaling]]\ntau = '1/n'\nkeep = '1/n'\n",
     "options must hold"),
])
def test_bad_scan_configs_exit_2(body, message, tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text(body)
    assert main(["scan", str(config), "--out-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_theory_and_scan_plot_write_figures(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert main(["theory", "-o", str(tmp_path / "theory.png"), "--pdf"]) == 0
    assert (tmp_path / "theory.png").stat().st_size > 10_000
    assert (tmp_path / "theory.pdf").exists()
    assert main(["scan", "examples/phase_scan_small.toml", "--out-dir", str(tmp_path / "scan"),
                 "--workers", "2", "--no-progress", "--allow-import"]) == 0
    assert "12 cells: 0 already done, 12 computed" in capsys.readouterr().out
    assert main(["plot", str(tmp_path / "scan"), "-o", str(tmp_path / "diagram.png")]) == 0
    # the cheap cell function makes wgf decay for every scaling: 1 of 3 agrees with theory
    assert "decided 3/3 scalings: 1 agree with theory, 2 wrong" in capsys.readouterr().out
    assert (tmp_path / "diagram.png").stat().st_size > 10_000
    assert (tmp_path / "diagram_panels.png").stat().st_size > 10_000
