"""The runner's backends: a Dask scheduler that does not answer fails within its timeout with
one line; bad backend options are refused before any work."""
import socket
import threading
import time

import pytest

from meanfield_dropout.runtime.runner import DASK_TIMEOUT, check_backend, run_unordered


def _double(x):
    return 2 * x


@pytest.fixture
def silent_server():
    """A loopback server that accepts connections and never answers; its address."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []

    def accept():
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:             # closed
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    server.close()
    for connection in accepted:
        connection.close()


def test_a_scheduler_that_never_answers_fails_within_the_timeout(silent_server):
    pytest.importorskip("dask.distributed")
    assert DASK_TIMEOUT <= 10
    start = time.monotonic()
    with pytest.raises(ValueError, match=r"^dask: cannot connect to the scheduler "
                                         r"'tcp://127\.0\.0\.1:\d+': no answer within 1\.5 s"):
        list(run_unordered(_double, [(1,), (2,)], 1, dask=silent_server, dask_timeout=1.5))
    assert time.monotonic() - start < 1.5 + 4


def test_a_cli_map_on_a_silent_scheduler_is_one_line_and_status_2(silent_server, tmp_path,
                                                                   capsys):
    pytest.importorskip("dask.distributed")
    from phase_diagram.cli.main import main

    start = time.monotonic()
    status = main(["map", "--grid", "2", "--widths", "16,32", "--repeats", "2", "--horizon",
                   "1", "--budget", "1", "--out-dir", str(tmp_path / "map"), "-o",
                   str(tmp_path / "map.png"), "--no-progress", "--dask", silent_server,
                   "--dask-timeout", "1"])
    assert status == 2 and time.monotonic() - start < 30
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: dask: cannot connect") and \
        "no answer within 1 s" in err[0]


@pytest.mark.parametrize("dask, timeout, message", [
    ("", None, "dask must be"), (3, None, "dask must be"),
    ("local", 0, "dask_timeout must be a finite number > 0"),
    ("local", float("nan"), "dask_timeout"), ("local", "5", "dask_timeout")])
def test_bad_backend_options_are_refused(dask, timeout, message):
    with pytest.raises(ValueError, match=message):
        check_backend(dask, timeout)
    with pytest.raises(ValueError, match=message):
        list(run_unordered(_double, [(1,)], 1, dask=dask, dask_timeout=timeout))


def test_dask_timeout_option_is_checked_when_parsed(capsys):
    from phase_diagram.cli.main import main

    assert main(["map", "--quick", "--dask", "local", "--dask-timeout", "-1"]) == 2
    assert "expected a number of seconds > 0, got '-1'" in capsys.readouterr().err
