"""The live processes of this machine, read from ``/proc`` (Linux), for the tests of workers
and interrupts."""
from pathlib import Path


def live_processes():
    """``{pid: (stat, cmdline)}`` of the processes that are not zombies: ``stat`` the fields
    of ``/proc/PID/stat`` after the command name (state, parent, group, session, ...),
    ``cmdline`` the raw command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if stat[0] != "Z":
            found[int(entry.name)] = (stat, cmdline)
    return found
