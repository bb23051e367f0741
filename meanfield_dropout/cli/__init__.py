"""The command line ``meanfield-dropout`` (:mod:`.main`) and the option types and error
handling shared with ``phase-diagram`` (:mod:`.options`)."""


def main(argv=None):
    """Run ``meanfield-dropout`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    from .main import main as run
    return run(argv)
