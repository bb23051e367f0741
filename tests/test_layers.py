"""The imports point down the layers of ``docs/guide/architecture.md``: every import of both
packages, at module level or inside a function, goes to a layer no higher than its own, and
``meanfield_dropout`` never imports ``phase_diagram``. The infrastructure is written once:
one module of the two packages uses each of the process pool, Dask, the thread limits, the
Student-t quantiles, atomic renames and file locks, and one table holds the figures' labels
and colours."""
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


def used_names(path):
    """Dotted names ``path`` imports (``x.y`` from ``from x import y``) or reads as ``a.b``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            yield f"{node.value.id}.{node.attr}"


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


#: A library entry point → the one module that uses it.
WRITTEN_ONCE = {
    "concurrent.futures.ProcessPoolExecutor": "meanfield_dropout.runtime.runner",
    "dask.distributed": "meanfield_dropout.runtime.runner",
    "distributed": "meanfield_dropout.runtime.runner",
    "threadpoolctl": "meanfield_dropout.runtime.threads",
    "numba.set_num_threads": "meanfield_dropout.runtime.threads",
    "scipy.stats": "meanfield_dropout.stats",
    "os.replace": "meanfield_dropout.runtime.results",
    "tempfile.mkstemp": "meanfield_dropout.runtime.results",
    "fcntl": "meanfield_dropout.runtime.cells",
}


def test_infrastructure_is_written_once():
    users = {entry: set() for entry in WRITTEN_ONCE}
    for name, _, path in modules():
        for used in set(used_names(path)):
            for entry in WRITTEN_ONCE:
                if used == entry or used.startswith(entry + "."):
                    users[entry].add(name)
    assert users == {entry: {module} for entry, module in WRITTEN_ONCE.items()}


def test_labels_and_colours_are_one_table():
    from meanfield_dropout.kernels.variants import VARIANTS
    from meanfield_dropout.limits import LIMITS
    names = set(VARIANTS) | set(LIMITS)
    tables = set()
    for name, _, path in modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            # a literal {variant or limit: text}: legend names, colours, another source's names
            if isinstance(node, ast.Dict) and len({getattr(k, "value", None) for k in node.keys}
                                                  & names) >= 2 \
                    and all(isinstance(getattr(v, "value", None), str) for v in node.values):
                tables.add(name)
    assert tables == {"meanfield_dropout.plots.style"}
