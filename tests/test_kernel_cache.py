"""A cached kernel holds the machine code of the kernels it calls, so its cache entry is keyed
by the source of the whole kernel layer (:mod:`meanfield_dropout.kernels.cache`): an edit to
one kernel module, or an upgrade that changes it, recompiles the cached kernels of the other
modules that call it instead of running the old code."""
import importlib
import pkgutil
import subprocess
import sys

from numba.core.registry import CPUDispatcher

import meanfield_dropout.kernels as kernels
from meanfield_dropout.kernels import cache
from meanfield_dropout.runtime.compiling import cache_environment

CALLEE = "from numba import njit\n\n\n@njit(cache=True)\ndef plus(x):\n    return x + {}\n"
CALLER = ("from numba import njit\n\nfrom callee import plus\n\n\n@njit(cache=True)\n"
          "def twice_plus(x):\n    return 2 * plus(x)\n")
RUN = ("import sys\nsys.path.insert(0, {folder!r})\nfrom meanfield_dropout.kernels import cache\n"
       "if {register}:\n    cache.register({folder!r})\nimport caller\n"
       "print(caller.twice_plus(1))\n")


def test_every_kernel_is_keyed_by_the_source_of_the_layer():
    stamp = cache.source_stamp(cache.FOLDER)
    keyed = []
    for info in pkgutil.iter_modules(kernels.__path__):
        module = importlib.import_module(f"{kernels.__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, CPUDispatcher) and value.py_func.__module__ == module.__name__:
                assert value._cache._impl.locator.get_source_stamp() == stamp, value
                keyed.append(value)
    assert len(keyed) > 50


def _caller_result(layer, register, numba_cache):
    script = RUN.format(folder=str(layer), register=register)
    env = cache_environment(numba_cache)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, check=True)
    return int(done.stdout.split()[-1])


def test_an_edited_callee_recompiles_the_cached_kernels_that_call_it(tmp_path):
    results = {}
    for register in (True, False):
        layer = tmp_path / f"layer-{register}"
        layer.mkdir()
        (layer / "caller.py").write_text(CALLER)
        seen = []
        for increment in (1, 2):
            (layer / "callee.py").write_text(CALLEE.format(increment))
            seen.append(_caller_result(layer, register, tmp_path / f"cache-{register}"))
        results[register] = seen
    # 2 * (1 + 1), then 2 * (1 + 2) once the callee's module changed
    assert results[True] == [4, 6]
    # Numba alone keys the caller by its own file, so its cached entry keeps the old callee:
    # what the layer's key prevents
    assert results[False] == [4, 4]
