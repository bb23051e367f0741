"""The imports point down the layers of ``docs/guide/architecture.md``: every import of both
packages, at module level or inside a function, goes to a layer no higher than its own, and
``meanfield_dropout`` never imports ``phase_diagram``."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("meanfield_dropout", "phase_diagram")

# Layers from the bottom; modules of one layer may import each other.
LAYERS = {
    "meanfield_dropout": [
        ("kernels",),
        ("validation",),
        ("runtime",),
        (None,),            # the public API: every module and subpackage not named here
        ("plots",),
        ("experiments",),
        ("", "cli", "__main__"),   # the package's facade and its command line
    ],
    "phase_diagram": [
        ("theory",),
        ("finder",),
        (None,),            # convergence along scalings, scans, cluster configuration
        ("plots",),
        ("experiments",),
        ("", "cli", "__main__"),
    ],
}


def layer(module):
    """(package rank, layer rank) of a dotted module name; a higher pair is a higher layer."""
    package, _, rest = module.partition(".")
    first = rest.split(".")[0]
    layers = LAYERS[package]
    rank = next((i for i, names in enumerate(layers) if first in names),
                next(i for i, names in enumerate(layers) if None in names))
    return PACKAGES.index(package), rank


def modules():
    """Every module of both packages: (dotted name, is a package ``__init__``, path)."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            yield ".".join(parts[:-1] if is_package else parts), is_package, path


def is_module(name):
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports(name, is_package, path):
    """The package modules that ``path`` imports, anywhere in it: (line, module)."""
    here = name.split(".") if is_package else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else []
            source = ".".join(base + ([node.module] if node.module else []))
            # ``from package import module`` imports the module; anything else, the source
            targets = [f"{source}.{alias.name}" if is_module(f"{source}.{alias.name}")
                       else source for alias in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] in PACKAGES:
                yield node.lineno, target


EDGES = [(name, line, target) for name, is_package, path in modules()
         for line, target in imports(name, is_package, path)]


def test_edges_found():
    assert len({name for name, _, _ in EDGES}) > 50
    assert ("phase_diagram.finder.decision", "meanfield_dropout.stats") in {
        (name, target) for name, _, target in EDGES}


def test_meanfield_dropout_never_imports_phase_diagram():
    wrong = [f"{name}:{line} imports {target}" for name, line, target in EDGES
             if name.startswith("meanfield_dropout") and target.startswith("phase_diagram")]
    assert not wrong, wrong


def test_imports_point_down():
    wrong = [f"{name}:{line} ({layer(name)}) imports {target} ({layer(target)})"
             for name, line, target in EDGES if layer(target) > layer(name)]
    assert not wrong, wrong


def test_command_lines_are_imported_only_by_command_lines():
    # phase_diagram's command line shares meanfield_dropout's option types
    wrong = [f"{name}:{line} imports {target}" for name, line, target in EDGES
             if target.split(".")[1:2] == ["cli"]
             and name.split(".")[1:2] not in (["cli"], ["__main__"])]
    assert not wrong, wrong


@pytest.mark.parametrize("module, expected", [
    ("meanfield_dropout.kernels.core", (0, 0)),
    ("meanfield_dropout.engine", (0, 3)),
    ("meanfield_dropout.sme.model", (0, 3)),
    ("meanfield_dropout.cli.options", (0, 6)),
    ("meanfield_dropout", (0, 6)),
    ("phase_diagram.theory.phases", (1, 0)),
    ("phase_diagram.scan.grid", (1, 2)),
])
def test_layer_of_a_module(module, expected):
    assert layer(module) == expected
