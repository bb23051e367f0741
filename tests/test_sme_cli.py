"""Smoke tests of the ``sme``, ``sme-order`` and ``alignment`` sub-commands."""
import pytest

from meanfield_dropout.cli import main


@pytest.mark.parametrize("argv", [
    ["sme", "--width", "4", "--steps", "6", "--trials", "2", "--n-train", "30", "--n-test", "10",
     "--record-every", "3", "--lr", "0.1"],
    ["sme-order", "--lrs", "0.5,0.25", "--keep-probs", "0.5", "--time", "0.5", "--runs", "20"],
    ["alignment", "--width", "3", "--steps", "4", "--eval-every", "2", "--n-train", "20",
     "--n-test", "5", "--masks", "10", "--baseline-samples", "3"],
])
def test_commands_write_png(tmp_path, argv):
    out = tmp_path / "fig.png"
    assert main(argv + ["--out", str(out)]) == 0
    assert out.exists() and out.stat().st_size > 0
    assert out.with_suffix(".npz").exists()


def test_bad_argument_exit_code(tmp_path, capsys):
    code = main(["sme", "--keep-prob", "1.5", "--steps", "2", "--out", str(tmp_path / "x.png")])
    assert code == 2
    assert "keep_prob must be in (0, 1]" in capsys.readouterr().err
    assert main(["sme-order", "--lrs", "0.3,abc", "--out", str(tmp_path / "y.png")]) == 2
