"""The bad-input table: every sub-command of both command lines with out-of-range numbers,
wrong types, bad paths and corrupt files. Each gives exit status 2 and one line on stderr
naming the argument or the file, never a traceback and never a silent result.

The table runs the commands in-process (``main(argv)``); a handful of true subprocess checks
at the end confirm that the installed entry points behave the same.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from meanfield_dropout.cli.main import main as mf_main
from meanfield_dropout.data.images import write_idx
from phase_diagram.cli.main import main as pd_main
from phase_diagram.scan import load_config
from phase_diagram.scan.records import write_manifest

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "examples" / "phase_scan_small.toml"
SCALING = "[[scaling]]\ntau = '0.5*n**-0.5'\nkeep = '0.7'\n"
SIM = ["simulate", "--width", "10", "--master-lr", "0.1", "--steps", "2", "--dim", "3",
       "--data-points", "20", "--no-progress"]
CONVERGE = ["converge", "--master-lr", "0.5*n**-0.5", "--keep-prob", "0.5", "--widths", "20,40",
            "--repeats", "1", "--n-times", "2", "--horizon", "0.5", "--no-progress"]


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    """{placeholder: path} of the bad files and directories the table refers to."""
    base = tmp_path_factory.mktemp("bad")
    out = {"FILE": base / "file.txt", "DIR": base / "dir", "MISSING": base / "no" / "ne.npz",
           "BAD_NPZ": base / "random.npz", "TRUNC_NPZ": base / "cut.npz",
           "TRUNC_IDX": base / "cut.idx", "LABELS": base / "labels.idx",
           "BIN_TOML": base / "binary.toml", "HUGE_TOML": base / "huge.toml",
           "WIDE_TOML": base / "wide.toml", "IMPORT_TOML": base / "import.toml",
           "NO_MANIFEST": base / "empty", "NO_CONFIG": base / "noconfig",
           "LIST_MANIFEST": base / "list", "BAD_CACHE": base / "cache",
           "EMPTY_SCAN": base / "emptyscan", "FIGURES": base / "figures"}
    out["FILE"].write_text("not a data file\n")
    for key in ("DIR", "NO_MANIFEST", "NO_CONFIG", "LIST_MANIFEST", "BAD_CACHE", "FIGURES"):
        out[key].mkdir()
    rng = np.random.default_rng(0)
    out["BAD_NPZ"].write_bytes(rng.bytes(4000))
    np.savez(base / "mnist.npz", x_train=rng.integers(0, 256, (30, 28, 28)),
             y_train=rng.integers(0, 10, 30))
    archive = (base / "mnist.npz").read_bytes()
    out["TRUNC_NPZ"].write_bytes(archive[:len(archive) // 2])
    write_idx(base / "images.idx", rng.integers(0, 256, (30, 28, 28), dtype=np.uint8))
    write_idx(out["LABELS"], rng.integers(0, 10, 30, dtype=np.uint8))
    images = (base / "images.idx").read_bytes()
    out["TRUNC_IDX"].write_bytes(images[:len(images) // 3])
    out["BIN_TOML"].write_bytes(b"\xff\xfe\x00\x81 binary")
    out["HUGE_TOML"].write_text("widths = [16, 32]\nrepeats = 1000000000\n" + SCALING)
    out["WIDE_TOML"].write_text("widths = [16, 1000000000000]\nrepeats = 1\n" + SCALING)
    out["IMPORT_TOML"].write_text("widths = [16, 32]\ncell_function = 'os:system'\n" + SCALING)
    (out["NO_CONFIG"] / "manifest.json").write_text('{"cells": []}')
    (out["LIST_MANIFEST"] / "manifest.json").write_text("[1, 2]")
    (out["BAD_CACHE"] / "teacher_student_quick.npz").write_bytes(rng.bytes(500))
    config = load_config(SMALL, allow_import=True)
    from phase_diagram.scan import build_cells
    write_manifest(out["EMPTY_SCAN"], config, [c.key for c in build_cells(config)])
    return out


def _fill(argv, paths):
    return [str(paths[a]) if a in paths else
            a.replace("FILE/", f"{paths['FILE']}/").replace("DIR/", f"{paths['DIR']}/")
            for a in argv]


MEANFIELD = [
    # simulate: numbers
    (SIM[:2] + ["0"] + SIM[3:] + ["--out", "x"], "argument --width: expected an integer >= 1"),
    (SIM[:2] + ["ten"] + SIM[3:] + ["--out", "x"], "argument --width: expected an integer"),
    (SIM + ["--steps", "-1", "--out", "x"], "argument --steps: expected an integer >= 0"),
    (SIM + ["--keep-prob", "1.5", "--out", "x"], "keep_prob must be in (0, 1]"),
    (SIM + ["--keep-prob", "5e-324", "--out", "x"], "keep_prob must be in [1e-300, 1]"),
    (SIM + ["--keep-prob", "nan", "--out", "x"], "keep_prob must be a finite real"),
    (SIM + ["--keep-prob", "half", "--out", "x"], "argument --keep-prob: invalid float"),
    (SIM + ["--master-lr", "-1", "--out", "x"], "master_lr must be a finite number > 0"),
    (SIM + ["--master-lr", "inf", "--out", "x"], "master_lr must be a finite real"),
    (SIM + ["--data-seed", "-1", "--out", "x"], "argument --data-seed: expected an integer >= 0"),
    (SIM + ["--seed", "-3", "--out", "x"], "argument --seed: expected an integer >= 0"),
    (SIM + ["--dim", "0", "--out", "x"], "argument --dim"),
    (SIM + ["--data-points", "0", "--out", "x"], "argument --data-points"),
    (SIM + ["--batch-size", "0", "--out", "x"], "argument --batch-size"),
    (SIM + ["--batch-size", "21", "--out", "x"], "batch_size must be an integer in [1, 20]"),
    (SIM + ["--variants", "dropout,foo", "--out", "x"], "argument --variants"),
    (SIM + ["--activation", "relux", "--out", "x"], "activation must be one of"),
    (SIM + ["--loss", "hinge", "--out", "x"], "argument --loss: invalid choice"),
    (SIM + ["--snapshot-every", "-1", "--out", "x"], "argument --snapshot-every"),
    (SIM + ["--snapshot-neurons", "0", "--out", "x"], "argument --snapshot-neurons"),
    (SIM + ["--snapshot-neurons", "11", "--out", "x"], "snapshot_neurons must be an integer"),
    (SIM + ["--dtype", "float16", "--out", "x"], "argument --dtype: invalid choice"),
    (SIM, "the following arguments are required: -o/--out"),
    # simulate: paths, before anything runs
    (SIM + ["--out", ""], "argument -o/--out: expected a file path, got ''"),
    (SIM + ["--out", "DIR"], "is a directory; give a file path"),
    (SIM + ["--out", "FILE/run.npz"], "file.txt is not a directory"),
    (SIM + ["--out", "FILE/a/b/run.npz"], "file.txt is not a directory"),
    # simulate: size and divergence
    (SIM[:2] + ["1000000000000"] + SIM[3:] + ["--out", "x"], "needs"),
    (["simulate", "--width", "1000", "--master-lr", "0.1", "--steps", "1000000",
      "--snapshot-every", "1", "--no-progress", "--out", "x"], "1000001 snapshot(s) needs"),
    (SIM[:4] + ["1e6"] + SIM[5:] + ["--out", "x"], "diverged: variant 'dropout' diverged at "
                                                   "step"),
    # demo
    (["demo", "--width", "0"], "argument --width"),
    (["demo", "--steps", "0"], "argument --steps"),
    (["demo", "--seed", "-1"], "argument --seed"),
    (["demo", "--out", "FILE/d.png"], "file.txt is not a directory"),
    (["demo", "--out", "DIR"], "is a directory"),
    (["demo", "--out", "demo.npz"], "unknown figure format '.npz'"),
    # sme, sme-order, alignment
    (["sme", "--keep-prob", "1.5", "--steps", "2", "--out", "DIR/s.png"], "keep_prob"),
    (["sme", "--lr", "-1", "--steps", "2", "--out", "DIR/s.png"], "lr"),
    (["sme", "--width", "0"], "argument --width"),
    (["sme", "--order", "3"], "argument --order: invalid choice"),
    (["sme", "--output-scale", "2"], "argument --output-scale: invalid choice"),
    (["sme", "--n-train", "0"], "argument --n-train"),
    (["sme", "--data", "mnist", "--mnist-images", "MISSING"],
     "argument --mnist-images: no such file"),
    (["sme", "--data", "mnist", "--mnist-images", "DIR"], "is not a regular file"),
    (["sme", "--data", "mnist", "--mnist-images", "BAD_NPZ", "--steps", "2", "--out",
      "DIR/s.png"], "random.npz is not a MNIST archive"),
    (["sme", "--data", "mnist", "--mnist-images", "TRUNC_NPZ", "--steps", "2", "--out",
      "DIR/s.png"], "cut.npz is not a MNIST archive"),
    (["sme", "--data", "mnist", "--mnist-images", "TRUNC_IDX", "--mnist-labels", "LABELS",
      "--steps", "2", "--out", "DIR/s.png"], "cut.idx: header says shape"),
    (["sme", "--data", "mnist", "--mnist-images", "FILE", "--mnist-labels", "LABELS",
      "--steps", "2", "--out", "DIR/s.png"], "file.txt is not an IDX file"),
    (["sme", "--out", "FILE/s.png"], "file.txt is not a directory"),
    (["sme-order", "--lrs", "0.3,abc"], "argument --lrs: expected a comma-separated list"),
    (["sme-order", "--repeats", "0"], "argument --repeats"),
    (["sme-order", "--out", "DIR"], "is a directory"),
    (["alignment", "--masks", "0"], "argument --masks"),
    (["alignment", "--eval-every", "-2"], "argument --eval-every"),
    (["alignment", "--out", "FILE/a.png"], "file.txt is not a directory"),
    # reproduce
    (["reproduce", "bogus"], "NAME must be one of"),
    (["reproduce"], "give experiment NAMEs or --all"),
    (["reproduce", "--workers", "0", "sme"], "argument --workers"),
    (["reproduce", "--seed", "-1", "sme"], "argument --seed"),
    (["reproduce", "--out-dir", "FILE", "sme"], "file.txt exists and is not a directory"),
    (["reproduce", "--out-dir", "FILE/x", "sme"], "file.txt is not a directory"),
    (["reproduce", "--mnist", "MISSING", "images_variants"], "argument --mnist: no such file"),
    (["reproduce", "--quick", "--mnist", "BAD_NPZ", "--out-dir", "DIR", "--no-progress",
      "images_variants"], "random.npz is not a MNIST archive"),
    (["reproduce", "--quick", "--replot", "--out-dir", "NO_MANIFEST", "teacher_student"],
     "replot needs the cached results"),
    (["reproduce", "--quick", "--replot", "--out-dir", "BAD_CACHE", "teacher_student"],
     "teacher_student_quick.npz is not a result file"),
]

PHASE = [
    (["classify", "--master-lr", "0.5*n**", "--keep-prob", "1/n"], "malformed tau expression"),
    (["classify", "--master-lr", "os.system('x')", "--keep-prob", "1/n"], "may be called"),
    (["classify", "--master-lr", "1/n", "--keep-prob", "0"], "must be positive"),
    (["classify", "--master-lr", "exp(1000)", "--keep-prob", "1"], "cannot be evaluated"),
    (["classify", "--master-lr", "(-n)**0.5", "--keep-prob", "1"], "fractional power"),
    (["classify", "--master-lr", "1/n", "--keep-prob", "1/n", "--width", "0"], "integer >= 1"),
    (["classify", "--keep-prob", "1/n"], "required"),
    (["frobnicate"], "invalid choice"),
    # scan
    (["scan", "MISSING", "--out-dir", "DIR/s"], "cannot read scan configuration"),
    (["scan", "DIR", "--out-dir", "DIR/s"], "is a directory, not a TOML file"),
    (["scan", "FILE", "--out-dir", "DIR/s"], "malformed TOML in"),
    (["scan", "BIN_TOML", "--out-dir", "DIR/s"], "binary.toml is not a UTF-8 text (TOML) file"),
    (["scan", str(SMALL), "--out-dir", "DIR/s", "--workers", "0"], "argument --workers"),
    (["scan", str(SMALL), "--out-dir", "FILE"], "file.txt exists and is not a directory"),
    (["scan", str(SMALL), "--out-dir", "FILE/s"], "file.txt is not a directory"),
    (["scan", str(SMALL), "--out-dir", "DIR/s"], "needs --allow-import"),
    (["scan", "IMPORT_TOML", "--out-dir", "DIR/s"],
     "'os:system' is not a registered cell function"),
    (["scan", "HUGE_TOML", "--out-dir", "DIR/huge"], "the 2000000000 cells of the scan"),
    (["scan", "WIDE_TOML", "--out-dir", "DIR/wide"], "a cell at width 1000000000000"),
    # plot and theory
    (["plot", "MISSING", "-o", "DIR/p.png"], "argument dir: no such directory"),
    (["plot", "FILE", "-o", "DIR/p.png"], "file.txt is not a directory"),
    (["plot", "NO_MANIFEST", "-o", "DIR/p.png"], "holds no scan (no manifest.json)"),
    (["plot", "NO_CONFIG", "-o", "DIR/p.png"], "noconfig/manifest.json is not a scan manifest"),
    (["plot", "LIST_MANIFEST", "-o", "DIR/p.png"], "list/manifest.json is not a scan manifest"),
    (["plot", "EMPTY_SCAN", "-o", "DIR/p.png"],
     "no scaling has finished cells at two or more widths (12 of 12 cells are not finished)"),
    (["plot", "NO_MANIFEST", "-o", "DIR"], "argument -o/--out"),
    (["plot", "NO_MANIFEST", "-o", "FILE/p.png"], "file.txt is not a directory"),
    (["theory", "-o", "FILE/t.png"], "file.txt is not a directory"),
    (["theory", "-o", ""], "argument -o/--out: expected a file path"),
    (["theory", "-o", "t.csv"], "unknown figure format '.csv'"),
    # converge
    (["converge", "--master-lr", "1/n", "--out", "DIR/c.png"],
     "give --master-lr and --keep-prob"),
    (["converge", "--all-phases", "--master-lr", "1/n", "--out", "DIR/c.png"],
     "--all-phases takes no --master-lr"),
    (CONVERGE[:6] + ["20"] + CONVERGE[7:] + ["--out", "DIR/c.png"], "two distinct widths"),
    (CONVERGE[:6] + ["0,20"] + CONVERGE[7:] + ["--out", "DIR/c.png"],
     "widths entry must be an integer in [1, inf]"),
    (CONVERGE[:6] + ["a,b"] + CONVERGE[7:] + ["--out", "DIR/c.png"], "argument --widths"),
    (CONVERGE + ["--limit", "foo", "--out", "DIR/c.png"], "argument --limit"),
    (CONVERGE + ["--limit", "critical", "--out", "DIR/c.png"], "pass --force"),
    (CONVERGE + ["--repeats", "0", "--out", "DIR/c.png"], "argument --repeats"),
    (CONVERGE + ["--n-times", "1", "--out", "DIR/c.png"], "argument --n-times"),
    (CONVERGE + ["--seed", "-1", "--out", "DIR/c.png"], "argument --seed"),
    (CONVERGE[:-2] + ["-1", "--no-progress", "--out", "DIR/c.png"], "horizon must be"),
    (CONVERGE + ["--coupled", "pn", "--out", "DIR/c.png"], "argument --coupled"),
    (CONVERGE + ["--metric", "l1", "--out", "DIR/c.png"], "argument --metric"),
    (CONVERGE + ["--out", "FILE/c.png"], "file.txt is not a directory"),
    (CONVERGE + ["--out", "DIR/c.png", "--data-out", "DIR"], "is a directory"),
    (CONVERGE, "required: -o/--out"),
    # the commands: a finite blow-up and a horizon that runs no step
    (["converge", "--master-lr", "30*n**-0.5", "--keep-prob", "0.5", "--widths", "20,40",
      "--repeats",
      "1", "--horizon", "3000", "--n-times", "3", "--no-progress", "--out", "DIR/c.png"],
     "diverged: width 20, master_lr 6.708, keep_prob 0.5: variant 'dropout' diverged at step"),
    (["converge", "--master-lr", "1e6*n**-0.5", "--keep-prob", "0.5", "--widths", "20,40",
      "--repeats",
      "1", "--horizon", "0.5", "--n-times", "2", "--no-progress", "--out", "DIR/c.png"],
     "horizon 0.5 runs no step of dropout at width 20"),
    # reproduce
    (["reproduce", "--scan-config", "MISSING", "phase_diagram"],
     "argument --scan-config: no such file"),
    (["reproduce", "--scan-dir", "FILE", "phase_diagram"], "exists and is not a directory"),
    (["reproduce", "--quick", "--replot", "--scan-dir", "NO_MANIFEST", "--out-dir",
      "FIGURES", "phase_diagram"], "replot needs a scan in"),
    (["reproduce", "--quick", "--replot", "--scan-dir", "EMPTY_SCAN", "--out-dir",
      "FIGURES", "phase_diagram"], "no scaling has finished cells"),
]


def _check(main, argv, message, paths, capsys):
    code = main(_fill(argv, paths))
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2, (argv, captured.err)
    assert len(lines) == 1 and message in lines[0], (argv, captured.err)
    assert "Traceback" not in captured.err and not captured.out.strip(), captured.out


@pytest.mark.parametrize("argv, message", MEANFIELD, ids=lambda v: " ".join(v)[:60]
                         if isinstance(v, list) else None)
def test_meanfield_dropout_bad_input(argv, message, paths, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    _check(mf_main, argv, message, paths, capsys)
    assert not list(tmp_path.iterdir())            # nothing was written before failing


@pytest.mark.parametrize("argv, message", PHASE, ids=lambda v: " ".join(v)[:60]
                         if isinstance(v, list) else None)
def test_phase_diagram_bad_input(argv, message, paths, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    _check(pd_main, argv, message, paths, capsys)
    assert not list(tmp_path.iterdir())
    assert not list(paths["FIGURES"].iterdir())    # reproduce --replot wrote no figure


def test_unwritable_directories_are_named_before_running(paths, capsys, monkeypatch):
    """(The tests may run as root, for whom every directory is writable: os.access says
    what a user would be told.)"""
    real = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if Path(path) == paths["DIR"]
                        else real(path, mode))
    _check(mf_main, SIM + ["--out", "DIR/run.npz"], "is not writable", paths, capsys)
    _check(pd_main, ["theory", "-o", "DIR/t.png"], "is not writable", paths, capsys)
    _check(pd_main, ["scan", str(SMALL), "--out-dir", "DIR"], "is not writable", paths, capsys)
    if Path("/proc/self").is_dir():      # a directory nobody can create, root included
        _check(mf_main, SIM + ["--out", "/proc/nowhere/run.npz"], "/proc", paths, capsys)


def test_simulate_out_writes_and_prints_one_path(paths, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert mf_main(SIM + ["--out", "sub/dir/r.txt"]) == 0
    out = capsys.readouterr().out
    assert "wrote sub/dir/r.txt.npz" in out and (tmp_path / "sub/dir/r.txt.npz").is_file()
    assert sorted(p.name for p in (tmp_path / "sub/dir").iterdir()) == ["r.txt.npz"]


def test_invalid_records_and_a_cell_function_crash_are_one_line(paths, capsys, tmp_path):
    import shutil
    scan = tmp_path / "scan"
    shutil.copytree(paths["EMPTY_SCAN"], scan)
    (scan / "cells").mkdir()
    key = json.loads((scan / "manifest.json").read_text())["cells"][0]
    (scan / "cells" / f"{key}.json").write_text('{"distances": {}}')
    assert pd_main(["plot", str(scan), "-o", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("warning: 1 cell record(s)") and "invalid" in err[0]
    assert err[1].startswith(f"error: {scan}: no scaling has finished cells") and len(err) == 2
    assert "(12 of 12 cells are not finished)" in err[1]
    # TOML as code only when asked for, and then a crash of the function names the cell
    assert pd_main(["scan", str(paths["IMPORT_TOML"]), "--out-dir", str(tmp_path / "s"),
                    "--allow-import", "--no-progress", "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "failed: cell function os:system failed on the cell" in err[0]
    assert "TypeError" in err[0]


@pytest.mark.parametrize("module, argv, message", [
    ("meanfield_dropout", SIM + ["--out", "FILE/x.npz"], "file.txt is not a directory"),
    ("phase_diagram", ["plot", "LIST_MANIFEST", "-o", "DIR/p.png"], "not a scan manifest"),
    ("phase_diagram", ["scan", "BIN_TOML", "--out-dir", "DIR/s"], "not a UTF-8 text"),
])
def test_entry_points_give_the_same_one_line(module, argv, message, paths, tmp_path):
    done = subprocess.run([sys.executable, "-m", module, *_fill(argv, paths)], cwd=tmp_path,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                          text=True, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and message in lines[0], done.stderr


def _library_cases():
    from meanfield_dropout import SimulationResult, simulate, teacher_student
    from meanfield_dropout.convergence import CellSettings, measure_distances
    from meanfield_dropout.stats import fit_slopes

    data = teacher_student(dim=3, data_points=10, seed=0)
    run = dict(width=5, master_lr=0.1, steps=1, progress=False)
    cell = dict(limits=["wgf"], horizon=0.5, data=(data.inputs, data.targets), n_times=2)
    return [
        (lambda: simulate(data.inputs, data.targets, activation=["relu"], **run),
         "activation must be one of"),
        (lambda: simulate(data.inputs, data.targets, keep_prob=5e-324, **run),
         r"keep_prob must be in \[1e-300, 1\]"),
        (lambda: simulate(data.inputs + 1j, data.targets, **run), "inputs must be real"),
        (lambda: measure_distances(20, 0.1, 0.5, CellSettings(activation={"tanh": 1}, **cell),
                                   seed=0), "activation must be one of"),
        (lambda: measure_distances(20, 0.1, 0.5, CellSettings(divergence_factor=-1, **cell),
                                   seed=0), "divergence_factor"),
        (lambda: teacher_student(seed=-1), r"seed must be an integer in \[0, inf\]"),
        (lambda: fit_slopes([10, 20], [[1.0, 2.0, 3.0]]), r"shape \(repeats, 2\)"),
        (lambda: SimulationResult.load(ROOT / "README.md"), "README.md is not a result file"),
    ]


@pytest.mark.parametrize("index", range(8))
def test_library_entry_points_name_the_argument(index):
    call, message = _library_cases()[index]
    with pytest.raises(ValueError, match=message) as info:
        call()
    assert "\n" not in str(info.value)
