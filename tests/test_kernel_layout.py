"""The layout rule of the kernels: every Numba kernel of the package is in ``meanfield_dropout.kernels``."""
import importlib
import pkgutil

from numba.core.registry import CPUDispatcher

import meanfield_dropout


def test_every_numba_kernel_of_the_package_is_in_the_kernel_layer():
    modules = [importlib.import_module(info.name) for info in pkgutil.walk_packages(
        meanfield_dropout.__path__, "meanfield_dropout.") if not info.name.endswith("__main__")]
    kernels = {f"{value.py_func.__module__}.{value.py_func.__qualname__}"
               for module in modules for value in vars(module).values()
               if isinstance(value, CPUDispatcher)}
    assert len(modules) > 50 and len(kernels) > 50
    assert not {name for name in kernels if not name.startswith("meanfield_dropout.kernels.")}
