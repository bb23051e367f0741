"""Every public docstring parses as numpydoc without a warning, as the API reference reads it
(``mkdocs build --strict`` refuses any warning; this finds one in a fraction of a second).
Needs griffe (the ``griffelib`` distribution of the ``test`` and ``docs`` extras)."""
import logging
from pathlib import Path

import griffe
import pytest

ROOT = Path(__file__).resolve().parents[1]


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _parse_public(obj):
    """Parse the docstrings of ``obj`` and of its public members (the API reference's filter
    ``!^_``), recursively; aliases (re-exports) are parsed where they are defined."""
    if obj.docstring:
        obj.docstring.parse("numpy")
    for name, member in obj.members.items():
        if not name.startswith("_") and not member.is_alias:
            _parse_public(member)


@pytest.mark.parametrize("package", ["meanfield_dropout", "phase_diagram"])
def test_public_docstrings_parse_as_numpydoc_without_warning(package):
    handler = _Collect()
    logger = logging.getLogger("griffe")
    logger.addHandler(handler)
    try:
        _parse_public(griffe.load(package, search_paths=[str(ROOT)], docstring_parser="numpy"))
    finally:
        logger.removeHandler(handler)
    assert handler.messages == []
