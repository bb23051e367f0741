"""Every command line shown in the README and the documentation parses with today's options.

The commands are read from the ``bash`` code blocks of ``README.md``, ``figures/README.md`` and
``docs/**/*.md`` (and the shell examples inside the tutorials' Markdown cells), and handed to
the parsers of ``meanfield-dropout`` and ``phase-diagram`` without running anything. Input
files that a reader makes first (a scan directory, a local MNIST) may be missing here; every
other parse error — an unknown option, a renamed sub-command, a bad value — fails the test
with the command and the parser's message.
"""
import contextlib
import io
import warnings
import re
import shlex
from pathlib import Path

import pytest

from meanfield_dropout.cli.main import parser as meanfield_parser
from phase_diagram.cli.main import parser as phase_parser

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = {("python", "-m", "meanfield_dropout"): meanfield_parser,
            ("meanfield-dropout",): meanfield_parser,
            ("python", "-m", "phase_diagram"): phase_parser,
            ("phase-diagram",): phase_parser}
#: Parse errors that only say an input the reader creates first is not there yet.
MISSING_INPUT = re.compile(r"no such (file|directory)")
BLOCK = re.compile(r"```bash\n(.*?)```", re.S)


def _sources():
    yield ROOT / "README.md"
    yield ROOT / "figures" / "README.md"
    yield from sorted((ROOT / "docs").rglob("*.md"))
    yield from sorted((ROOT / "docs" / "tutorials").glob("[0-9][0-9]_*.py"))


def _commands():
    """(source file, argv) for each command of the two programs in a bash block."""
    for path in _sources():
        text = path.read_text()
        if path.suffix == ".py":        # Markdown cells of a percent-format script
            text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#")
                             for line in text.splitlines())
        for block in BLOCK.findall(text):
            for line in block.replace("\\\n", " ").splitlines():
                for part in line.split("&&"):
                    words = shlex.split(part, comments=True)
                    for prefix in PROGRAMS:
                        if tuple(words[:len(prefix)]) == prefix:
                            yield path.relative_to(ROOT), prefix, words[len(prefix):]


COMMANDS = list(_commands())


def test_commands_found():
    assert len(COMMANDS) >= 30


@pytest.mark.parametrize("source, program, argv", COMMANDS,
                         ids=[f"{s}:{' '.join(a[:1])}" for s, _, a in COMMANDS])
def test_command_parses(source, program, argv, monkeypatch):
    monkeypatch.chdir(ROOT)
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()), \
            warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)      # the docs use no old spelling
        try:
            PROGRAMS[program]().parse_args(argv)
        except SystemExit as exc:
            message = errors.getvalue().strip().splitlines()[-1:] or [""]
            if exc.code != 0 and not MISSING_INPUT.search(message[0]):
                pytest.fail(f"{source}: `{' '.join(program + tuple(argv))}`: {message[0]}")
