"""A cold compile of the engine's chunk kernel compiles its backward pass in a second process
(``meanfield_dropout.runtime.compiling.SPLITS``, ``kernels.variants.chunk_callees``): the chunk kernel then
loads that pass from the cache, because the second process compiled it for exactly the
argument types the chunk kernel passes."""
import json
import os
import subprocess
import sys

import pytest

from meanfield_dropout.runtime import compiling

SCRIPT = """
import json
import numpy as np
from meanfield_dropout import simulate
from meanfield_dropout.kernels import variants
from meanfield_dropout.kernels.twins import serial, sign_path_only

rng = np.random.default_rng(0)
inputs = rng.standard_normal((12, 3))
result = simulate(inputs, np.tanh(inputs[:, 0]), width=8, keep_prob=0.5, master_lr=0.01,
                  steps=3, variants=("dropout", "pn_ram"), progress=False)
# the second group of chunk_callees, as the serial chunk kernel of a ReLU run without a
# penalty (the sign path's copy) calls them
chunk = serial(sign_path_only(variants._run_chunk))
apart = [chunk.py_func.__globals__[name] for name in (
    "_backward_step", "_active_rows", "_dropped_rows", "_rows_within")]
print(json.dumps(dict(
    hits=[len(kernel._cache_hits) for kernel in apart],
    misses=[len(kernel._cache_misses) for kernel in apart],
    chunk_misses=len(chunk._cache_misses),
    loss=float(result.train_loss["dropout"][-1]))))
"""


def _run(tmp_path, split):
    env = compiling.cache_environment(tmp_path / f"cache-{split}",
                                      **{compiling.SPLIT_VARIABLE: split})
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="the split needs a second core")
def test_a_cold_chunk_kernel_loads_the_backward_pass_compiled_apart(tmp_path):
    apart = _run(tmp_path, "1")
    # compiled in the second process, found in the cache by the chunk kernel's compile
    assert apart["hits"] == [1] * 4 and apart["misses"] == [0] * 4
    assert apart["chunk_misses"] == 1
    alone = _run(tmp_path, "0")
    assert alone["hits"] == [0] * 4 and alone["misses"] == [1] * 4
    assert apart["loss"] == alone["loss"]
