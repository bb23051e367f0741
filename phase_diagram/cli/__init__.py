"""The command line ``phase-diagram``: the parser and the theory and scan commands
(:mod:`.main`), the ``locate`` and ``map`` commands (:mod:`.finder`), the ``grid`` command
(:mod:`.grid`)."""


def main(argv=None):
    """Run ``phase-diagram`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    from .main import main as run
    return run(argv)
