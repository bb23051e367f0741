"""Test session set-up: the Agg backend, and ``--cpu-durations=N``.

``--cpu-durations=N`` prints the N tests that used the most CPU time (this process, all its
threads, and the subprocesses it waited for): unlike ``--durations`` (wall time), it does not
grow when other work shares the machine, so it is how to compare the suite's cost across runs.
"""
import resource
import time

import matplotlib
import pytest

matplotlib.use("Agg")

_CPU = {}


def pytest_addoption(parser):
    parser.addoption("--cpu-durations", type=int, default=None, metavar="N",
                     help="show the N tests with the most CPU time (0: all), and the total")


def _cpu_seconds():
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    start = _cpu_seconds()
    yield
    _CPU[item.nodeid] = _cpu_seconds() - start


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    count = config.getoption("--cpu-durations")
    if count is None or not _CPU:
        return
    ranked = sorted(_CPU.items(), key=lambda item: -item[1])
    terminalreporter.section(f"CPU time (setup + call + teardown) of {len(ranked)} tests")
    for nodeid, seconds in ranked[:count or None]:
        terminalreporter.write_line(f"{seconds:8.2f}s  {nodeid}")
    terminalreporter.write_line(f"{sum(_CPU.values()):8.2f}s  total")
