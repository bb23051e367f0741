"""Attributes of a package imported on first use (PEP 562), so that importing the package
does not import what only some commands need (matplotlib for the figures)."""
import importlib
import sys


def lazy_attributes(package, sources):
    """``__getattr__`` and ``__dir__`` for the module ``package``: the attribute ``name`` is
    imported from the submodule ``sources[name]`` on first access, then kept on the module.

    Parameters
    ----------
    package : str
        The module's ``__name__``.
    sources : dict
        Attribute name → relative submodule name (e.g. ``".figures"``).

    Returns
    -------
    tuple of callable
        ``(__getattr__, __dir__)``, to be bound at the module's top level.
    """
    def __getattr__(name):
        if name not in sources:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(sources[name], package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(sources))

    return __getattr__, __dir__
