"""Numba's compile cache: the warm-up and cache commands, and the message of a run that compiles."""
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numba import njit
from numba.core import config
from numba.core.caching import _CacheLocator

from meanfield_dropout import simulate, warmup
from meanfield_dropout.cli.main import main
from meanfield_dropout.kernels import variants
from meanfield_dropout.runtime import compiling
from meanfield_dropout.sme import model

ROOT = Path(__file__).resolve().parents[1]


def mask_task(dtype):
    """A tiny warm-up task: one small kernel, with a mask of a dtype of the task's own."""
    mask = np.array([True, False, True]).astype(np.bool_ if dtype == "float64" else np.int8)
    variants._active_rows(mask, np.empty(3, dtype=np.int64))


@njit(cache=True)
def _halves(values):
    """A kernel of another source folder than the package's kernels (Numba caches it apart)."""
    return 0.5 * values


def two_folders_task(dtype):
    """A warm-up task that compiles kernels of two source folders: the package's and this one."""
    mask_task(dtype)
    _halves(np.ones(2, dtype=dtype))


def _where_a_run_looks(kernel):
    """A new dispatcher of ``kernel``'s function: it reads the cache where a new process would."""
    return njit(cache=True)(kernel.py_func)


def _index_entries(index):
    """The entries (signature key → data file) of a Numba cache index file."""
    with open(index, "rb") as f:
        pickle.load(f)
        return pickle.loads(f.read())[1]


def _run(code, cache):
    env = compiling.cache_environment(cache, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], env=env, check=True,
                          capture_output=True, text=True)


def test_warmup_merges_every_process_entries_where_runs_read_them(tmp_path, monkeypatch):
    # two processes compile two signatures of one kernel: both must land in its one index; the
    # kernel of this test module must land in its own folder's cache, where runs look for it
    shared = tmp_path / "shared"
    monkeypatch.setattr(config, "CACHE_DIR", str(shared))
    tasks = [(f"{__name__}.two_folders_task", "float64"), (f"{__name__}.mask_task", "float32")]
    seconds = warmup.warmup(jobs=2, progress=False, tasks=tasks)
    assert seconds > 0
    target = shared / _CacheLocator.get_suitable_cache_subpath(variants.__file__)
    (index,) = target.glob("variants._active_rows-*.nbi")
    assert len(_index_entries(index)) == 2
    rows = np.empty(3, dtype=np.int64)
    for kernel, args in [(variants._active_rows, (np.ones(3, dtype=np.bool_), rows)),
                         (variants._active_rows, (np.ones(3, dtype=np.int8), rows)),
                         (_halves, (np.ones(2),))]:
        assert compiling.is_cached(_where_a_run_looks(kernel), args), kernel
    assert not compiling.is_cached(_where_a_run_looks(_halves), (np.ones(2, dtype=np.int8),))
    # a new process with this cache loads them and compiles nothing
    done = _run(f"from {__name__} import _halves, mask_task, two_folders_task, variants\n"
                "two_folders_task('float64'); mask_task('float32')\n"
                "print(*(sum(getattr(k, c).values()) for k in (variants._active_rows, _halves) "
                "for c in ('_cache_hits', '_cache_misses')))", shared)
    assert done.stdout.split() == ["2", "0", "1", "0"]


def test_warmup_command_reports_its_time(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(warmup, "warmup",
                        lambda dtypes, jobs, progress: calls.append((dtypes, jobs)) or 1.5)
    assert main(["warmup", "--dtype", "all", "--jobs", "2", "--no-progress"]) == 0
    assert calls == [(("float64", "float32"), 2)]
    out = capsys.readouterr().out
    assert "float64, float32 kernels" in out and "in 1.5 s" in out
    assert main(["warmup", "--dtype", "float16"]) == 2
    assert main(["warmup", "--jobs", "0"]) == 2


def test_cache_info_and_clear_cover_every_folder_of_the_package(tmp_path, monkeypatch, capsys):
    # the kernels' folder, and the folder of sme/ where a former version cached SME kernels
    monkeypatch.setattr(config, "CACHE_DIR", str(tmp_path))
    kernels = tmp_path / _CacheLocator.get_suitable_cache_subpath(variants.__file__)
    moved = tmp_path / _CacheLocator.get_suitable_cache_subpath(model.__file__)
    for folder, name, size in [
            (kernels, "core._f-10.py311.nbi", 10), (kernels, "core._f-10.py311.1.nbc", 2 ** 20),
            (kernels, "core.cpython-311.pyc", 5), (moved, "model._gradient-236.py311.nbi", 10),
            (moved, "model._gradient-236.py311.1.nbc", 2 ** 20)]:
        folder.mkdir(exist_ok=True)
        (folder / name).write_bytes(b"x" * size)
    assert warmup.cache_dir() == kernels and {kernels, moved} <= set(warmup.cache_folders())
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert str(kernels) in out and str(moved) in out and "2 compiled kernels, 2.0 MB" in out
    assert main(["cache", "clear"]) == 0
    assert "removed 2.0 MB" in capsys.readouterr().out
    assert [p.name for p in kernels.iterdir()] == ["core.cpython-311.pyc"]
    assert not list(moved.iterdir())
    assert main(["cache", "size"]) == 2


def test_a_run_that_compiles_says_so_and_a_cached_one_does_not(monkeypatch, capsys):
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((6, 2))
    run = dict(width=3, keep_prob=0.5, master_lr=0.1, steps=2, progress=True)
    simulate(inputs, inputs[:, 0], **run)
    capsys.readouterr()
    simulate(inputs, inputs[:, 0], **run)
    assert "compiling kernels" not in capsys.readouterr().err
    monkeypatch.setattr(compiling, "is_cached", lambda kernel, args: False)
    monkeypatch.setenv(compiling.SPLIT_VARIABLE, "0")     # nothing to compile apart
    monkeypatch.setattr(compiling, "_announced", set())
    simulate(inputs, inputs[:, 0], **run)
    err = capsys.readouterr().err
    assert "compiling kernels: first run only" in err and "meanfield-dropout warmup" in err


def _limits_calls():
    from meanfield_dropout.limits import LimitConstants, simulate_limit
    from meanfield_dropout.network import network_data
    train = network_data(*warmup._teacher(), activation="tanh")
    run = dict(times=[0.0, 0.02], limit_particles=4, progress=True)
    return [lambda: simulate_limit("wgf", train, **run),
            lambda: simulate_limit("jump-poisson", train, LimitConstants(alpha=0.1), **run)]


def _curvature_calls():
    from meanfield_dropout import curvature
    from meanfield_dropout.network import init_particles
    inputs, targets = warmup._teacher()
    X = init_particles(4, inputs.shape[1])
    return [lambda: curvature.loss_gradient(X, inputs, targets),
            lambda: curvature.sharpness(X, inputs, targets, iterations=2),
            lambda: curvature.hessian_vector_product(X, inputs, targets, X)]


def _sme_calls():
    from meanfield_dropout import sme
    inputs, targets = warmup._teacher()
    problem = sme.make_problem(inputs, targets[:, None], width=3, keep_prob=0.5)
    params = sme.init_params(problem)
    return [lambda: sme.simulate_dropout(problem, params, 0.01, 2, progress=True),
            lambda: sme.simulate_modified_gd(problem, params, 0.01, 2),
            lambda: sme.simulate_sme(problem, params, 0.01, 2),
            lambda: sme.noise_covariance(problem, params),
            lambda: sme.empirical_covariance(problem, params, 2),
            lambda: sme.modified_loss_hessian(problem, params),
            lambda: sme.hessian_vector_product(problem, params, params)]


@pytest.mark.parametrize("task, calls", [("limits", _limits_calls),
                                         ("curvature", _curvature_calls), ("sme", _sme_calls)])
def test_the_limits_curvature_and_sme_say_once_that_they_compile(task, calls, monkeypatch, capsys):
    calls = calls()
    for call in calls:          # compiles (and says so) on a cold cache, or loads
        call()
    capsys.readouterr()
    for call in calls:          # compiled in this process: no message
        call()
    assert "compiling kernels" not in capsys.readouterr().err
    # a cold cache: the first kernel that compiles says so, with the task's time, and only once
    monkeypatch.setattr(compiling, "is_cached", lambda kernel, args: False)
    monkeypatch.setenv(compiling.SPLIT_VARIABLE, "0")     # nothing to compile apart
    monkeypatch.setattr(compiling, "_announced", set())
    monkeypatch.setattr(compiling, "_compiled", set())
    for call in calls + calls:
        call()
    err = capsys.readouterr().err
    assert err.count("compiling kernels: first run only") == 1
    assert f"about {compiling.COMPILE_SECONDS[task, 'float64']} s" in err
    # a warm cache: every kernel is checked once, and none is announced
    monkeypatch.setattr(compiling, "is_cached", lambda kernel, args: True)
    monkeypatch.setattr(compiling, "_announced", set())
    monkeypatch.setattr(compiling, "_compiled", set())
    for call in calls:
        call()
    assert "compiling kernels" not in capsys.readouterr().err


def test_an_sme_run_says_so_before_its_bar(monkeypatch, capsys):
    simulate_dropout = _sme_calls()[0]
    simulate_dropout()
    capsys.readouterr()
    monkeypatch.setattr(compiling, "is_cached", lambda kernel, args: False)
    monkeypatch.setenv(compiling.SPLIT_VARIABLE, "0")     # nothing to compile apart
    monkeypatch.setattr(compiling, "_announced", set())
    monkeypatch.setattr(compiling, "_compiled", set())
    simulate_dropout()
    assert capsys.readouterr().err.startswith("compiling kernels: first run only")

