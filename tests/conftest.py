"""Test session set-up: the Agg backend, and ``--cpu-durations=N``.

``--cpu-durations=N`` prints the N tests that used the most CPU time (the process that ran the
test, all its threads, and the subprocesses it waited for): unlike ``--durations`` (wall time),
it does not grow when other work shares the machine, so it is how to compare the suite's cost
across runs. It works with pytest-xdist's workers (``-n``), which run the default suite; in
them a cold compile stays in the worker's process (``runtime.compiling.SPLIT_VARIABLE``).
"""
import os
import resource
import time

import matplotlib
import pytest

from meanfield_dropout.runtime import compiling

matplotlib.use("Agg")

#: test node id → CPU seconds at its start (this process), and its CPU seconds (every test)
_START, _CPU = {}, {}


def pytest_configure(config):
    if hasattr(config, "workerinput"):
        # pytest-xdist's workers share the cores: a cold compile stays in its process
        os.environ[compiling.SPLIT_VARIABLE] = "0"


def pytest_addoption(parser):
    parser.addoption("--cpu-durations", type=int, default=None, metavar="N",
                     help="show the N tests with the most CPU time (0: all), and the total")


def _cpu_seconds():
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _START[item.nodeid] = _cpu_seconds()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # the test's CPU time rides on its teardown report: under pytest-xdist the worker that ran
    # the test measures it and the controller, which prints the summary, reads it
    outcome = yield
    if call.when == "teardown":
        seconds = _cpu_seconds() - _START.pop(item.nodeid)
        outcome.get_result().user_properties.append(("cpu_seconds", seconds))


def pytest_runtest_logreport(report):
    if report.when == "teardown":
        for name, value in report.user_properties:
            if name == "cpu_seconds":
                _CPU[report.nodeid] = value


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    count = config.getoption("--cpu-durations")
    if count is None or not _CPU:
        return
    ranked = sorted(_CPU.items(), key=lambda item: -item[1])
    terminalreporter.section(f"CPU time (setup + call + teardown) of {len(ranked)} tests")
    for nodeid, seconds in ranked[:count or None]:
        terminalreporter.write_line(f"{seconds:8.2f}s  {nodeid}")
    terminalreporter.write_line(f"{sum(_CPU.values()):8.2f}s  total")
