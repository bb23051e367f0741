"""MkDocs hooks of the documentation site.

* The API reference is generated from the source tree: one page per package folder, one
  ``:::`` block (mkdocstrings) per public module, so a module added to either package appears
  in the reference without editing the docs. A module is public when no part of its dotted
  name starts with an underscore.
* The figures of ``figures/`` (the repository's gallery) are served under ``figures/`` so the
  pages show the same PNG files the scripts write, without copies.
* Sphinx roles left in numpydoc docstrings (``:func:`x` ``) render as plain code.
* Each tutorial's executed notebook (``docs/tutorials/NN_*.ipynb``, rendered by mkdocs-jupyter)
  must hold the code of its jupytext source (``NN_*.py``): the build fails otherwise, naming
  the command that re-executes it.
"""
import json
import re
from pathlib import Path

import jupytext
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("meanfield_dropout", "phase_diagram")

# The order of the API pages and the one-line description each page opens with.
SUBPACKAGE_TITLES = {
    "meanfield_dropout": "The engine, limits, convergence and curvature",
    "meanfield_dropout.data": "Data sets",
    "meanfield_dropout.sme": "Stochastic modified equations",
    "meanfield_dropout.experiments": "The papers' experiments",
    "meanfield_dropout.plots": "Figures",
    "meanfield_dropout.runtime": "Runtime: runner, cell store, memory guard, result files",
    "meanfield_dropout.kernels": "Numba kernels",
    "meanfield_dropout.cli": "Command line (meanfield-dropout)",
    "phase_diagram": "Phase-diagram explorer",
    "phase_diagram.theory": "Theory: scalings, limit constants, phases",
    "phase_diagram.finder": "Finder: decision, plug-in, locate, map",
    "phase_diagram.scan": "Scans",
    "phase_diagram.cli": "Command line (phase-diagram)",
}


def _is_public(parts):
    return not any(part.startswith("_") for part in parts)


def api_pages():
    """``{page path: (package, [module, ...])}`` for every package folder of both packages.

    The package's own ``__init__`` comes first; a package folder's modules are listed on its
    page, and a sub-folder gets a page of its own.
    """
    pages = {}
    for package in PACKAGES:
        for init in sorted((ROOT / package).rglob("__init__.py")):
            folder = init.parent
            parts = folder.relative_to(ROOT).parts
            if not _is_public(parts):
                continue
            name = ".".join(parts)
            modules = [name] + [f"{name}.{path.stem}" for path in sorted(folder.glob("*.py"))
                                if not path.stem.startswith("_")]
            pages[f"api/{name}.md"] = (name, modules)
    order = list(SUBPACKAGE_TITLES)
    return dict(sorted(pages.items(),
                       key=lambda item: (order.index(item[1][0]) if item[1][0] in order
                                         else len(order), item[1][0])))


def _page_text(package, modules):
    title = SUBPACKAGE_TITLES.get(package, package)
    blocks = [f"# `{package}` — {title}\n"]
    for module in modules:
        if module == package:
            # The package's docstring; its names are documented in their own modules.
            blocks.append(f"::: {module}\n    options:\n      members: false\n"
                          f"      show_root_heading: false\n")
        else:
            blocks.append(f"::: {module}\n")
    return "\n".join(blocks)


def _code_cells(cells):
    return [("".join(c["source"]) if isinstance(c["source"], list) else c["source"]).strip()
            for c in cells if c["cell_type"] == "code"]


def check_tutorials():
    """PluginError unless every tutorial source has an executed notebook with its code."""
    folder = ROOT / "docs" / "tutorials"
    stale = []
    for source in sorted(folder.glob("[0-9][0-9]_*.py")):
        notebook = source.with_suffix(".ipynb")
        expected = _code_cells(jupytext.read(source).cells)
        if not notebook.exists():
            stale.append(f"{notebook.name} is missing")
            continue
        cells = json.loads(notebook.read_text())["cells"]
        if _code_cells(cells) != expected:
            stale.append(f"{notebook.name} does not hold the code of {source.name}")
        elif any(c["cell_type"] == "code" and c.get("execution_count") is None
                 for c in cells):
            stale.append(f"{notebook.name} is not executed")
    if stale:
        raise PluginError("; ".join(stale) + ": run `cd docs/tutorials && jupytext --to ipynb "
                          "--execute NN_name.py`")


def on_pre_build(config):
    """Refuse to build with stale tutorial notebooks."""
    check_tutorials()


def on_config(config):
    """List the generated API pages in the navigation, after the reference's index page."""
    for entry in config["nav"]:
        if isinstance(entry, dict) and "API reference" in entry:
            index = entry["API reference"]
            entry["API reference"] = ([index] if isinstance(index, str) else list(index)) + [
                {f"{package}": path} for path, (package, _) in api_pages().items()]
    return config


def on_files(files, config):
    """Add the generated API pages and the repository's figures."""
    for path, (package, modules) in api_pages().items():
        files.append(File.generated(config, path, content=_page_text(package, modules)))
    for png in sorted((ROOT / "figures").glob("*.png")):
        files.append(File(f"figures/{png.name}", str(ROOT), config["site_dir"],
                          config["use_directory_urls"]))
    return files


_ROLE = re.compile(r":(?:py:)?(?:func|mod|class|meth|attr|data|obj|exc|const):"
                   r"<code>(~?)\.?([^<]+)</code>")


def _strip_role(match):
    tilde, target = match.groups()
    return f"<code>{target.rsplit('.', 1)[-1] if tilde else target}</code>"


def on_page_content(html, page, config, files):
    """Render Sphinx cross-reference roles of the docstrings as code."""
    return _ROLE.sub(_strip_role, html)
