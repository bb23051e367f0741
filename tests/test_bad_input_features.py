"""The bad-input table of the newer features: ``locate``, ``map``, the MNIST loaders, the
curvature API, cluster configurations, scan configurations and quick modes.

Each row is an input and the one-line message it must give, before any work: exit status 2
and one line on stderr for the command lines, one ``ValueError`` line for the Python API.
No row runs a simulation or submits a job: the functions that start the work raise
``AssertionError`` here (:func:`no_work`), so a row whose check is missing, or comes only
after the work, fails instead of passing on a message given late. No row writes a file.
"""
import dataclasses
import gzip
import io
import os
import signal
import zipfile
from pathlib import Path

import numpy as np
import pytest

from meanfield_dropout.cli.main import main as mf_main
from meanfield_dropout.curvature import batch_sharpness
from meanfield_dropout.data import load_dataset, mnist47, mnist_task
from meanfield_dropout.data.images import write_idx
from meanfield_dropout.experiments.mnist import MnistSettings, run as mnist_run
from phase_diagram.cli.main import main as pd_main
from phase_diagram.cluster import JobqueueConfig, load_jobqueue_config
from phase_diagram.finder.locate import LocateSettings, locate, locate_horizons
from phase_diagram.finder.phase_map import QUICK, MapConfig, run_map
from phase_diagram.scan.grid import QUICK as GRID_QUICK

from .test_bad_input import _fill

ROOT = Path(__file__).resolve().parents[1]
LOCATE = ["locate", "--width", "64", "--master-lr", "0.5", "--keep-prob", "0.5"]
MAP = ["map", "--quick"]


def _npy_header(shape):
    """The bytes of an .npy header of a float64 array of ``shape`` (no data after it)."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"shape": shape, "fortran_order": False, "descr": "<f8"})
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def no_work(monkeypatch):
    """Every function that starts the work of a command or of a public function under test
    (simulations, cells, draws, experiments, cluster jobs) raises ``AssertionError``."""
    def started(*args, **kwargs):
        raise AssertionError("the work started before the bad input was refused")

    for target in ("phase_diagram.finder.locate._measure",
                   "phase_diagram.finder.phase_map.run_cells",
                   "meanfield_dropout.curvature._sharpness_terms",
                   "meanfield_dropout.experiments.mnist.run_cells",
                   "phase_diagram.scan.runner.run_cells",
                   "phase_diagram.cli.main.run_sequential",
                   "meanfield_dropout.convergence.simulate",
                   "meanfield_dropout.convergence.simulate_limit",
                   "phase_diagram.cli.grid.decide_grid",
                   "meanfield_dropout.cli.options.reproduce",
                   "phase_diagram.cluster.JobqueueConfig.start"):
        monkeypatch.setattr(target, started)


#: Seconds a row may take before it counts as hanging (each takes well under one).
HANG_SECONDS = 30


@pytest.fixture(autouse=True)
def no_hang():
    """A row that blocks (a FIFO opened for reading waits for a writer forever) fails with
    ``AssertionError`` after :data:`HANG_SECONDS`, instead of hanging the suite."""
    def hung(signum, frame):
        raise AssertionError(f"no answer within {HANG_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(HANG_SECONDS)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    """{placeholder: path} of the bad files and directories the tables refer to."""
    base = tmp_path_factory.mktemp("bad_features")
    out = {name: base / file for name, file in {
        "FILE": "file.txt", "DIR": "dir", "FOLDER_PNG": "figure.png", "MISSING": "no/such.npz",
        "FIFO": "fifo.npz",
        "EMPTY_NPZ": "empty.npz", "TRUNC_NPZ": "cut.npz", "COMPLEX_NPZ": "complex.npz",
        "NAN_NPZ": "nan.npz", "KEYS_NPZ": "keys.npz", "SHAPE_NPZ": "shape.npz",
        "ZERO_NPZ": "zero.npz", "BOMB_NPZ": "bomb.npz", "CSV": "data.csv",
        "NO47": "no47", "LABELS99": "labels99", "IDX_BOMB": "bomb-images-idx3-ubyte.gz",
        "IDX_HUGE": "huge-images-idx3-ubyte.gz", "IDX_FIFO": "fifo-images-idx3-ubyte",
        "JOBQUEUE": "jobqueue.toml", "JOBQUEUE_NL": "newline.toml",
        "KEEP_TOML": "keep.toml", "TIMES_TOML": "times.toml", "METRIC_TOML": "metric.toml",
        "LIMITS_TOML": "limits.toml", "WIDTHS_TOML": "widths.toml", "BIG_TOML": "big.toml",
        "TOML_FIFO": "fifo.toml"}.items()}
    out["FILE"].write_text("not a data file\n")
    out["DIR"].mkdir()
    out["FOLDER_PNG"].mkdir()
    os.mkfifo(out["FIFO"])
    os.mkfifo(out["IDX_FIFO"])
    os.mkfifo(out["TOML_FIFO"])
    out["EMPTY_NPZ"].write_bytes(b"")
    rng = np.random.default_rng(0)
    inputs, targets = rng.normal(size=(20, 3)), rng.normal(size=20)
    np.savez(base / "good.npz", inputs=inputs, targets=targets)
    archive = (base / "good.npz").read_bytes()
    out["TRUNC_NPZ"].write_bytes(archive[:len(archive) // 2])
    np.savez(out["COMPLEX_NPZ"], inputs=inputs + 1j, targets=targets)
    np.savez(out["NAN_NPZ"], inputs=np.where(inputs > 1, np.nan, inputs), targets=targets)
    np.savez(out["KEYS_NPZ"], x=inputs, y=targets)
    np.savez(out["SHAPE_NPZ"], inputs=inputs, targets=targets[:5])
    np.savez(out["ZERO_NPZ"], inputs=inputs, targets=0 * targets)
    with zipfile.ZipFile(out["BOMB_NPZ"], "w") as bomb:     # 8 TB once read
        bomb.writestr("inputs.npy", _npy_header((10 ** 9, 1000)))
        bomb.writestr("targets.npy", _npy_header((10 ** 9,)))
    out["CSV"].write_text("1,2\n")
    for name, labels in (("NO47", rng.choice([0, 1, 2], 30)),
                         ("LABELS99", rng.integers(20, 99, 30))):
        out[name].mkdir()
        write_idx(out[name] / "train-images-idx3-ubyte",
                  rng.integers(0, 256, (30, 28, 28), dtype=np.uint8))
        write_idx(out[name] / "train-labels-idx1-ubyte", labels.astype(np.uint8))
    header = bytes([0, 0, 8, 3]) + b"".join(s.to_bytes(4, "big") for s in (10, 28, 28))
    with gzip.open(out["IDX_BOMB"], "wb") as bomb:          # 10 images, then 50 MB of zeros
        bomb.write(header + bytes(50 * 10 ** 6))
    huge = bytes([0, 0, 8, 3]) + b"".join(s.to_bytes(4, "big") for s in (10 ** 9, 280, 28))
    out["IDX_HUGE"].write_bytes(gzip.compress(huge))
    for name in ("IDX_BOMB", "IDX_HUGE"):
        labels = out[name].with_name(out[name].name.replace("images-idx3", "labels-idx1"))
        labels.write_bytes(gzip.compress(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big")
                                         + bytes(10)))
    out["JOBQUEUE"].write_text('system = "slurm"\nmemory = "lots"\n')
    out["JOBQUEUE_NL"].write_text('job_extra_directives = ["--x\\n#SBATCH --evil"]\n')
    scaling = "[[scaling]]\ntau = '0.5*n**-0.5'\n"
    out["KEEP_TOML"].write_text("widths = [16, 32]\n" + scaling + "keep = '1.5'\n")
    small = "widths = [16, 32]\nrepeats = 1\nhorizon = 0.1\n"
    out["TIMES_TOML"].write_text(small + "options = {n_times = 10000000}\n" + scaling
                                 + "keep = '0.5'\n")
    out["METRIC_TOML"].write_text(small + "metric = 'x'\n" + scaling + "keep = '0.5'\n")
    out["LIMITS_TOML"].write_text(small + "limits = ['wgf', 'wgf']\n" + scaling
                                  + "keep = '0.5'\n")
    out["WIDTHS_TOML"].write_text(f"widths = {list(range(16, 1016))}\n" + scaling
                                  + "keep = '0.5'\n")
    out["BIG_TOML"].write_text("# padding\n" * 200_000 + "widths = [16, 32]\n" + scaling
                               + "keep = '0.5'\n")
    return out


PHASE = [
    # locate: the figure is checked when the options are parsed
    (LOCATE + ["-o", "FILE/x.png"], "argument -o/--out: cannot write"),
    (LOCATE + ["-o", "FILE/a/b/x.png"], "file.txt is not a directory"),
    (LOCATE + ["-o", "x.xyz"], "argument -o/--out: x.xyz: unknown figure format '.xyz'"),
    (LOCATE + ["-o", "DIR"], "is a directory; give a file path"),
    (LOCATE + ["-o", ""], "argument -o/--out: expected a file path"),
    (LOCATE + ["--csv", "FILE/x.csv"], "argument --csv: cannot write"),
    # locate: numbers
    (LOCATE + ["--budget", "nan"], "--budget must be a number in (0, 1e+07]"),
    (LOCATE + ["--budget", "0"], "--budget must be a number in (0, 1e+07]"),
    (LOCATE + ["--repeats", "1"], "--repeats must be an integer in [2, 100]"),
    (["locate", "--width", "8", "--master-lr", "0.5", "--keep-prob", "0.5"],
     "--width must be an integer in [16, 65536]"),
    (LOCATE[:4] + ["0"] + LOCATE[5:], "--master-lr must be a number in (0, 1]"),
    (LOCATE + ["--steps", "10", "--horizon", "2"], "not allowed with argument"),
    # locate: data files, checked before any run
    (LOCATE + ["--data", "MISSING"], "argument --data: no such file"),
    (LOCATE + ["--data", "FIFO"], "argument --data: FIFO/ is not a regular file (a FIFO)"),
    (LOCATE + ["--data", "DIR/x.npz"], "argument --data: no such file"),
    (LOCATE + ["--data", "EMPTY_NPZ"], "empty.npz is not a data file"),
    (LOCATE + ["--data", "TRUNC_NPZ"], "cut.npz is not a data file"),
    (LOCATE + ["--data", "COMPLEX_NPZ"], "complex.npz: inputs must be real, got complex values"),
    (LOCATE + ["--data", "NAN_NPZ"], "nan.npz: inputs contains NaN or infinite values"),
    (LOCATE + ["--data", "KEYS_NPZ"], "keys.npz needs arrays 'inputs' and 'targets'"),
    (LOCATE + ["--data", "SHAPE_NPZ"],
     "shape.npz: inputs must be (m, d) with m, d >= 1 and targets (m,)"),
    (LOCATE + ["--data", "ZERO_NPZ"], "zero.npz: targets are all zero"),
    (LOCATE + ["--data", "BOMB_NPZ"], "reading data file"),
    (LOCATE + ["--data", "CSV"], "argument --data: expected one of teacher-student, toy, "
                                 "mnist47 or an .npz file"),
    # map: outputs checked when the options are parsed, settings before any cell
    (MAP + ["-o", "FILE/x.png"], "argument -o/--out: cannot write"),
    (MAP + ["-o", "x.xyz"], "argument -o/--out: x.xyz: unknown figure format '.xyz'"),
    (MAP + ["-o", "FOLDER_PNG"], "argument -o/--out: FOLDER_PNG/ is a directory; give a file path"),
    (MAP + ["--out-dir", "FILE"], "file.txt exists and is not a directory"),
    (MAP + ["--out-dir", "FILE/cells"], "file.txt is not a directory"),
    (MAP + ["--csv", "FILE/x.csv"], "argument --csv: cannot write"),
    (MAP + ["--grid", "3"], "--quick sets the map's settings; it takes no --grid"),
    (MAP + ["--data", "EMPTY_NPZ"], "empty.npz is not a data file"),
    (MAP + ["--data", "FIFO"], "argument --data: FIFO/ is not a regular file (a FIFO)"),
    (["map", "--grid", "1"], "--grid must be an integer in [2, 40]"),
    (["map", "--widths", "8,16"], "width must be an integer in [16, 65536]"),
    (["map", "--widths", "a,b"], "argument --widths"),
    (["map", "--replot", "--out-dir", "DIR", "--seed", "5"],
     "--replot redraws the map in --out-dir; it takes no --seed"),
    (["map", "--replot", "--out-dir", "DIR", "--workers", "2"], "it takes no --workers"),
    (["map", "--replot", "--out-dir", "DIR", "--data", "toy"], "it takes no --data"),
    (["map", "--replot", "--out-dir", "DIR"], "holds no phase map (no manifest.json)"),
    (["map", "--dask", "local", "--jobqueue", "JOBQUEUE", "--out-dir", "DIR/m", "-o",
      "DIR/m.png"], "give --dask or --jobqueue, not both"),
    (["map", "--jobqueue", "JOBQUEUE", "--out-dir", "DIR/m", "-o", "DIR/m.png"],
     "memory must be a size above 0 such as '4GB'"),
    (["map", "--jobqueue", "JOBQUEUE_NL", "--out-dir", "DIR/m", "-o", "DIR/m.png"],
     "job_extra_directives entry must be one line without control characters"),
    (["map", "--jobqueue", "TOML_FIFO", "--out-dir", "DIR/m", "-o", "DIR/m.png"],
     "is not a regular file (a FIFO)"),
    # grid: the same rules as map
    (["grid", "--quick", "--max-steps", "5"], "--quick sets the grid's settings; it takes "
                                             "no --max-steps"),
    (["grid", "--replot", "--out-dir", "DIR", "--seed", "5"],
     "--replot redraws the grid in --out-dir; it takes no --seed"),
    (["grid", "--repeats", "5", "--max-repeats", "4", "--estimate"],
     "max_repeats must be an integer in [5, 100], got 4"),
    (["grid", "--min-width", "512", "--estimate"], "min_width must be an integer in [16, 256], "
                                                   "got 512"),
    (["grid", "--quick", "--max-repeats", "20"], "--quick sets the grid's settings; it takes "
                                                 "no --max-repeats"),
    # scan configurations
    (["scan", "KEEP_TOML", "--out-dir", "DIR/s"],
     "scaling #1: keep q_n = 1.5 is 1.5 at n=16, above 1"),
    (["scan", "WIDTHS_TOML", "--out-dir", "DIR/s"],
     "widths lists 1000 widths; a scan takes at most 64"),
    (["scan", "BIG_TOML", "--out-dir", "DIR/s"], "big.toml holds"),
    (["scan", "TOML_FIFO", "--out-dir", "DIR/s"], "is not a regular file (a FIFO)"),
    (["scan", "METRIC_TOML", "--out-dir", "DIR/s"], "metric must be one of ['predictor', 'w2']"),
    (["scan", "LIMITS_TOML", "--out-dir", "DIR/s"], "limits must name each limit once"),

    # reproduce: an option of another experiment
    (["reproduce", "--quick", "--width", "3", "sme"], "--width is an option of mnist, not of sme"),
]

MEANFIELD = [
    (["reproduce", "--quick", "--width", "3", "sme"], "--width is an option of mnist, not of sme"),
    (["reproduce", "--quick", "--width", "3", "teacher_student"],
     "--width is an option of mnist, not of teacher_student"),
    (["reproduce", "--quick", "--mnist", "FIFO", "images_variants"],
     "argument --mnist: FIFO/ is not a regular file (a FIFO)"),
    (["reproduce", "--quick", "--cells-dir", "DIR/c", "sme"],
     "--cells-dir is an option of mnist, not of sme"),
]


def _message(message, paths):
    """``message`` with a placeholder followed by ``/`` replaced by its file's path."""
    for key, path in paths.items():
        message = message.replace(f"{key}/", str(path))
    return message


@pytest.mark.parametrize("main, argv, message",
                         [(pd_main, *row) for row in PHASE]
                         + [(mf_main, *row) for row in MEANFIELD],
                         ids=lambda v: " ".join(v)[:70] if isinstance(v, list) else "")
def test_features_bad_input(main, argv, message, paths, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    code = main(_fill(argv, paths))
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2, (argv, captured.err)
    assert len(lines) == 1 and _message(message, paths) in lines[0], (argv, captured.err)
    assert "Traceback" not in captured.err, captured.err
    assert not list(tmp_path.iterdir())          # nothing was written before failing
    assert not list(paths["DIR"].iterdir())


@pytest.mark.parametrize("argv, cwd, message", [
    (LOCATE + ["-o", "RO/x.png"], None, "argument -o/--out: cannot write"),
    (MAP + ["-o", "RO/m.png"], None, "argument -o/--out: cannot write"),
    (MAP + ["--out-dir", "RO/cells"], None, "argument --out-dir: cannot write"),
    (LOCATE + ["-o", "RO.png"], None, "the file is read-only"),
    (MAP + ["-o", "DIR/m.png"], "RO", "--out-dir: cannot write map_runs/phase_map_quick: "
                                      "directory . is not writable"),
])
def test_read_only_locations_are_refused_before_running(argv, cwd, message, tmp_path, capsys,
                                                        monkeypatch):
    """A read-only directory or file system, or a read-only file, named or default (os.access
    says so here: the tests may run as root, who may write anywhere)."""
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    (tmp_path / "ro.png").write_bytes(b"")
    (tmp_path / "dir").mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path).resolve() not in (
        readonly, tmp_path / "ro.png") and real(path, mode))
    monkeypatch.chdir(readonly if cwd else tmp_path)
    argv = [str(readonly) + a[2:] if a.startswith("RO/") else str(tmp_path / "ro.png")
            if a == "RO.png" else str(tmp_path / "dir") + a[3:] if a.startswith("DIR/") else a
            for a in argv]
    code = pd_main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert not list(readonly.iterdir()) and not list((tmp_path / "dir").iterdir())


@pytest.mark.parametrize("argv", [
    ["scan", "TIMES_TOML", "--out-dir", "DIR/s"],
    ["converge", "--master-lr", "0.5", "--keep-prob", "0.5", "--widths", "16,32",
     "--n-times", "10000000", "-o", "DIR/c.png"],
])
def test_time_grids_are_checked_before_they_are_built(argv, paths, capsys, monkeypatch,
                                                      tmp_path):
    """10^7 grid times (``n_times``) on a machine with 1 GiB available: refused before the
    grids (about 1.3 GB) are built. The memory is made small so that a missing check costs
    this test 1.3 GB, not the 60 GB of 10^9 times."""
    monkeypatch.setattr("meanfield_dropout.runtime.memory.available_memory", lambda: 1 << 30)
    monkeypatch.chdir(tmp_path)
    code = pd_main(_fill(argv, paths))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "a grid of 10000000 times needs" in err[0], err
    assert not list(paths["DIR"].iterdir())


class _Counted:
    """A file that counts the bytes read from it."""

    def __init__(self, handle):
        self.handle, self.count = handle, 0

    def read(self, size=-1):
        data = self.handle.read(size)
        self.count += len(data)
        return data

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()


def test_a_gzip_bomb_is_read_no_further_than_its_header_says(paths, monkeypatch):
    """The IDX file promises 10 images of 28 x 28 bytes and holds 50 MB: at most one byte more
    than promised is decompressed."""
    from meanfield_dropout.data import images

    opened = []
    real = images._open
    monkeypatch.setattr(images, "_open", lambda path: opened.append(_Counted(real(path)))
                        or opened[-1])
    with pytest.raises(ValueError, match="holds more"):
        images.read_idx(paths["IDX_BOMB"])
    assert opened[0].count <= 4 + 3 * 4 + 10 * 28 * 28 + 1


_RNG = np.random.default_rng(0)
PARTICLES, INPUTS, TARGETS = (_RNG.normal(size=(8, 4)), _RNG.normal(size=(20, 3)),
                              _RNG.normal(size=20))
ROWS = np.broadcast_to(np.ones(100), (10 ** 8, 100))     # 10^8 rows that take no memory
NET = (64, 0.5, 0.5)

#: (call of the paths, message): each raises a one-line ValueError before any work.
LIBRARY = [
    # locate: every argument before any run (its settings when they are built)
    (lambda p: LocateSettings(ratio=0.5), r"ratio must be a finite number > 1, got 0.5"),
    (lambda p: LocateSettings(close_threshold=-1), "close_threshold must be a finite number > 0"),
    (lambda p: LocateSettings(budget="5"), "budget must be a finite real number, got '5'"),
    (lambda p: LocateSettings(budget=float("nan")),
     "budget must be a finite real number, got nan"),
    (lambda p: LocateSettings(n_times=10 ** 9), r"n_times must be an integer in \[2, 1001\]"),
    (lambda p: LocateSettings(limit_factor=0), r"limit_factor must be an integer in \[1, 64\]"),
    (lambda p: locate(*NET, repeats=0), r"repeats must be an integer in \[1, 100\]"),
    (lambda p: locate(*NET, settings=dict(budget=5.0)),
     "settings must be a LocateSettings, got dict"),
    (lambda p: locate_horizons(*NET, steps=[10, 10 ** 8]),
     r"steps must be an integer in \[1, 10000000\], got 100000000"),
    (lambda p: locate_horizons(*NET, horizons=[2.0, 1e9]), r"horizon 1e\+09 needs"),
    (lambda p: locate_horizons(*NET, horizons=5.0), "horizon must be a sequence"),
    (lambda p: locate(*NET, ladder="yes"), "ladder must be True or False, got 'yes'"),
    (lambda p: locate(*NET, progress="no"), "progress must be True or False"),
    (lambda p: locate(*NET, data=5), "data must be one of teacher-student, toy, mnist47 or"),
    (lambda p: locate(*NET, data=(np.ones((5, 0)), np.ones(5))),
     r"inputs must be \(m, d\) with m, d >= 1"),
    (lambda p: locate(*NET, data=(INPUTS + 1j, TARGETS)),
     "data: inputs must be real, got complex values"),
    (lambda p: locate(*NET, data=(INPUTS, TARGETS[:3])), r"data: inputs must be \(m, d\)"),
    (lambda p: locate(*NET, data=(ROWS, ROWS[:, 0])),
     "data .100000000 rows of 100 inputs, .* copies. needs"),
    (lambda p: locate(*NET, data=str(p["FIFO"])), r"fifo.npz is not a regular file \(a FIFO\)"),
    (lambda p: load_dataset(str(p["TRUNC_NPZ"])), "cut.npz is not a data file"),
    (lambda p: load_dataset(p["BOMB_NPZ"]), "reading data file .*bomb.npz needs"),
    (lambda p: load_dataset(p["COMPLEX_NPZ"]), "complex.npz: inputs must be real"),
    (lambda p: load_dataset((INPUTS, TARGETS * 0)), "data: targets are all zero"),
    # map
    (lambda p: run_map(QUICK, p["FILE"]), "out_dir: .*file.txt exists and is not a directory"),
    (lambda p: run_map(QUICK, p["FILE"] / "cells"), "out_dir: cannot write"),
    (lambda p: run_map({"grid": 4}, p["DIR"] / "m"), "config must be a MapConfig"),
    (lambda p: run_map(QUICK, p["DIR"] / "m", dask=5), "dask must be a scheduler address"),
    (lambda p: MapConfig(widths=256), "widths must be a sequence of integers, got 256"),
    (lambda p: MapConfig(widths=(8,)), r"width must be an integer in \[16, 65536\]"),
    # MNIST loaders
    (lambda p: mnist_run(MnistSettings.quick().replace(width=10 ** 8), workers=1),
     r"the MNIST run \(width 100000000, .*\) needs"),
    (lambda p: mnist_run(MnistSettings.quick().replace(repeats=10 ** 8), workers=1),
     r"the MNIST run \(width .*, 200000000 cells .*\) needs"),
    (lambda p: mnist47(path=5), "path must be a file or directory path, got 5"),
    (lambda p: mnist47(path=p["FIFO"]), r"fifo.npz is not a regular file \(a FIFO\)"),
    (lambda p: mnist47(path=p["IDX_FIFO"]), r"is not a regular file \(a FIFO\)"),
    (lambda p: mnist47(path=p["NO47"]), "the train split has no images of digit.s. 4, 7"),
    (lambda p: mnist_task("full", path=p["NO47"]), "has no images of digit.s. 3, 4, 5"),
    (lambda p: mnist47(path=p["LABELS99"]), "train labels must be digits 0-9"),
    (lambda p: mnist47(path=p["IDX_BOMB"]), "header says shape .10, 28, 28. .* holds more"),
    (lambda p: mnist47(path=p["IDX_HUGE"]), r"shape \(1000000000, 280, 28\)\) needs"),
    (lambda p: mnist47(path=p["EMPTY_NPZ"]), "empty.npz is not an .npz archive"),
    (lambda p: mnist47(path=p["TRUNC_NPZ"]), "cut.npz is not an .npz archive"),
    # curvature
    (lambda p: batch_sharpness(PARTICLES, INPUTS, TARGETS, batch_size=4, draws=10 ** 12),
     "1000000000000 draws of batch_size 4 needs"),
    (lambda p: batch_sharpness(PARTICLES, INPUTS[:, 0], TARGETS, batch_size=4),
     r"inputs must have 2 dimension\(s\), got shape \(20,\)"),
    (lambda p: batch_sharpness(PARTICLES, INPUTS, TARGETS[:3], batch_size=4), "targets"),
    (lambda p: batch_sharpness(PARTICLES, INPUTS, TARGETS, batch_size=21),
     r"batch_size must be an integer in \[1, 20\]"),
    (lambda p: batch_sharpness(PARTICLES, INPUTS, TARGETS, batch_size=4, seed=-1),
     r"seed must be an integer in \[0, inf\]"),
    (lambda p: batch_sharpness(PARTICLES, INPUTS, TARGETS, batch_size=4, draws=0),
     r"draws must be an integer in \[1, inf\]"),
    # cluster configurations (nothing is submitted)
    (lambda p: JobqueueConfig(queue=5), "queue must be a non-empty string, got 5"),
    (lambda p: JobqueueConfig(memory="lots"), "memory must be a size above 0 such as '4GB'"),
    (lambda p: JobqueueConfig(memory=4), "memory must be a non-empty string"),
    (lambda p: JobqueueConfig(memory="0GB"), "memory must be a size above 0"),
    (lambda p: JobqueueConfig(queue="a\u2028b"), "queue must be one line"),
    (lambda p: JobqueueConfig(queue="a\x85b"), "queue must be one line"),
    (lambda p: JobqueueConfig(walltime="99:99:99"), "walltime must be HH:MM:SS"),
    (lambda p: JobqueueConfig(walltime="00:00:00"), "walltime must be HH:MM:SS"),
    (lambda p: JobqueueConfig(walltime="1h"), "walltime must be HH:MM:SS"),
    (lambda p: JobqueueConfig(job_extra_directives=["--x\n#SBATCH --evil"]),
     "job_extra_directives entry must be one line without control characters"),
    (lambda p: JobqueueConfig(job_script_prologue="source x"),
     "job_script_prologue must be a list of strings"),
    (lambda p: JobqueueConfig(account="a\rb"), "account must be one line"),
    (lambda p: JobqueueConfig(local_directory=""), "local_directory must be a non-empty"),
    (lambda p: JobqueueConfig(jobs=0), r"jobs must be an integer in \[1, 10000\]"),
    (lambda p: JobqueueConfig(system="slurmx"), "system must be one of"),
]


@pytest.mark.parametrize("call, message", LIBRARY, ids=lambda v: v if isinstance(v, str) else None)
def test_library_features_name_the_argument(call, message, paths):
    with pytest.raises(ValueError, match=message) as info:
        call(paths)
    assert "\n" not in str(info.value)


def test_valid_cluster_configurations_pass():
    config = JobqueueConfig(memory="2GiB", walltime="100:30:00", queue="compute",
                            job_extra_directives=["--constraint=cpu"])
    assert config.cluster_kwargs()["walltime"] == "100:30:00"
    assert load_jobqueue_config(ROOT / "examples" / "jobqueue_slurm.toml").jobs >= 1


class _Started(Exception):
    """Raised by a stand-in for the work, carrying what the command would have run."""


def _capture(monkeypatch, target, name):
    def run(*args, **kwargs):
        raise _Started(kwargs.get(name, args[0] if args else None))
    monkeypatch.setattr(target, run)


@pytest.mark.parametrize("argv, target, quick, field, expected", [
    (["map", "--quick", "--seed", "5"], "phase_diagram.cli.finder.run_map", QUICK, "seed", 5),
    (["map", "--quick", "--data", "teacher-student"], "phase_diagram.cli.finder.run_map",
     QUICK, "data", "teacher-student"),
    (["grid", "--quick", "--seed", "5"], "phase_diagram.cli.grid.decide_grid", GRID_QUICK,
     "seed", 5),
])
def test_quick_modes_honour_the_options_they_take(argv, target, quick, field, expected,
                                                  monkeypatch, tmp_path):
    """A quick mode runs its own settings with the seed and data it is given."""
    monkeypatch.chdir(tmp_path)
    _capture(monkeypatch, target, "config")
    with pytest.raises(_Started) as started:
        pd_main(argv)
    config = started.value.args[0]
    assert config == dataclasses.replace(quick, **{field: expected})


def test_reproduce_quick_honours_the_options_of_its_experiment(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    _capture(monkeypatch, "meanfield_dropout.cli.options.reproduce", "settings")
    with pytest.raises(_Started) as started:
        mf_main(["reproduce", "--quick", "--width", "3", "--seed", "7", "mnist"])
    settings = started.value.args[0]
    assert settings.width == 3 and settings.seed == 7
