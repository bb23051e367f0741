"""Serial twins of the parallel kernels: one source, the callees' twins, cache files of their own;
the sign path's copies, which compile no other backward pass.

That a twin (or a sign-path copy) gives the same bits as its kernel is
``tests/test_engine.py::test_serial_and_parallel_kernels_give_the_same_bits``.
"""
import pytest
from numba.core import config

from meanfield_dropout import warmup
from meanfield_dropout.kernels import core, limit_steps, relu_signs, twins, variants

from .test_warmup import _index_entries, _run

#: A run in a fresh process: a small one (serial twins) and, with ``parallel``, the same on
#: the parallel kernels; prints the cache hits and misses of both twins of the sign path's
#: ``_run_chunk`` (a ReLU run without a penalty) and how often the other backward pass compiled.
RUN = """
import numba, numpy as np
from meanfield_dropout import engine, simulate
from meanfield_dropout.kernels import core, twins, variants
from meanfield_dropout.runtime import threads
Z = np.random.default_rng(0).standard_normal((6, 2))
run = dict(width=3, keep_prob=0.5, master_lr=0.1, steps=2, variants=('gd', 'pn_ram'),
           progress=True)
simulate(Z, Z[:, 0], **run)
if {parallel}:
    engine.PARALLEL_SECONDS = 0.0
    threads.threads_for = lambda cells, available: available
    numba.set_num_threads(2)
    simulate(Z, Z[:, 0], **run)
for kernel in twins.twins(twins.sign_path_only(variants._run_chunk)):
    print(kernel.py_func.__qualname__, sum(kernel._cache_hits.values()),
          sum(kernel._cache_misses.values()))
print("_backward_block", len(core._backward_block.signatures))
"""


def test_a_serial_twin_is_the_same_source_calling_serial_twins():
    parallel, serial = twins.twins(variants._run_chunk)
    assert parallel is variants._run_chunk and serial is twins.serial(parallel)
    assert twins.twins(serial) == (parallel, serial)
    assert serial.py_func.__code__ is parallel.py_func.__code__
    # its callees, down to the parallel regions, are their serial twins
    namespace = serial.py_func.__globals__
    assert namespace["_forward_sums"] is twins.serial(core._forward_sums)
    assert namespace["_backward_step"] is twins.serial(core._backward_step)
    sign_step = twins.serial(core._backward_step)
    assert sign_step.py_func.__globals__["_sign_backward_step"] is \
        twins.serial(relu_signs._sign_backward_step)
    for kernel in (core._forward_sums, core._backward_step, relu_signs._sign_backward_step):
        twin = twins.serial(kernel)
        assert kernel.targetoptions["parallel"] and not twin.targetoptions["parallel"]
        assert twin.targetoptions.get("fastmath") == kernel.targetoptions.get("fastmath")
    assert twins.serial(limit_steps._heun).py_func.__globals__["_flow_step"] is \
        twins.serial(limit_steps._flow_step)
    # a kernel that reaches no parallel region is its own twin (compiled once for both)
    for kernel in (core._forward_block, core._backward_block, core._loss_value,
                   variants._rows_within):
        assert twins.serial(kernel) is kernel and twins.twins(kernel) == (kernel,)


def test_a_sign_path_copy_is_the_same_source_with_the_sign_path_alone():
    chunk = twins.sign_path_only(variants._run_chunk)
    assert chunk.py_func.__code__ is variants._run_chunk.py_func.__code__
    namespace = chunk.py_func.__globals__
    assert namespace["SIGN_PATH_ONLY"] and not variants.SIGN_PATH_ONLY
    step = namespace["_backward_step"]
    assert step is twins.sign_path_only(core._backward_step)
    assert step.py_func.__globals__["SIGN_PATH_ONLY"] and not step.targetoptions["parallel"]
    # its parallel region is the other pass's; the sign path's blocks run in parallel here
    assert step.py_func.__globals__["_sign_backward_step"].targetoptions["parallel"]
    # the forward pass without the path of several outputs keeps its parallel region
    forward = namespace["_forward_sums"]
    assert forward is twins.sign_path_only(core._forward_sums)
    assert forward.targetoptions["parallel"]
    assert forward.py_func.__globals__["_forward_block"].py_func.__globals__["SIGN_PATH_ONLY"]
    # a kernel that reaches no such constant is its own copy
    assert twins.sign_path_only(core._loss_value) is core._loss_value
    # the serial twin of the copy, and how another process makes it again
    twin = twins.serial(chunk)
    assert twins.twins(twin) == (chunk, twin)
    assert twin.py_func.__globals__["_backward_step"] is twins.serial(step)
    original, made = twins.recipe(twin)
    assert original is variants._run_chunk and made == ("sign_path_only", "serial")
    assert twins.remake(original, made) is twin


def test_twins_have_cache_files_of_their_own():
    # Numba's cache index does not record `parallel`: one file name would mix the twins
    for kernel in (variants._run_chunk, core._forward_sums, limit_steps._heun):
        names = {twin._cache._cache_file._index_name for twin in twins.twins(kernel)}
        assert len(names) == 2
    chunk = twins.sign_path_only(variants._run_chunk)
    names = {kernel._cache._cache_file._index_name
             for kernel in twins.twins(variants._run_chunk) + twins.twins(chunk)}
    assert len(names) == 4


@pytest.mark.slow
def test_a_cold_a_warm_and_a_warmed_up_cache_load_the_right_twin(tmp_path, monkeypatch):
    # a small run on an empty cache compiles the serial twins only; the next process loads them
    cold = tmp_path / "cold"
    done = _run(RUN.format(parallel=False), cold)
    assert done.stdout.split() == ["_run_chunk_signs", "0", "0", "_run_chunk_signs_serial", "0",
                                   "1", "_backward_block", "0"]
    assert "compiling kernels: first run only" in done.stderr
    names = {p.name.split("-")[0] for p in cold.rglob("variants.*.nbi")}
    assert "variants._run_chunk_signs_serial" in names and not names & {
        "variants._run_chunk", "variants._run_chunk_serial", "variants._run_chunk_signs"}
    # a float64 run compiles no float32 kernel
    signatures = [str(key[0]) for index in cold.rglob("*.nbi") for key in _index_entries(index)]
    assert signatures and not any("float32" in s for s in signatures)
    assert _run(RUN.format(parallel=False), cold).stdout.split() == \
        ["_run_chunk_signs", "0", "0", "_run_chunk_signs_serial", "1", "0", "_backward_block", "0"]
    # the warm-up compiles both twins; a small and a parallel run then compile nothing
    warm = tmp_path / "warm"
    monkeypatch.setattr(config, "CACHE_DIR", str(warm))
    warmup.warmup(tasks=[("simulate", "float64")], progress=False)
    assert _run(RUN.format(parallel=True), warm).stdout.split() == \
        ["_run_chunk_signs", "1", "0", "_run_chunk_signs_serial", "1", "0", "_backward_block", "0"]
