"""Claims on the cells of a scan directory, so that two scans into one directory never compute
a cell twice.

A process computing a cell holds an exclusive lock (``flock``) on ``DIR/claims/<key>.lock``,
which also records its PID and host. The operating system releases the lock when the process
ends, however it ends (``kill -9`` included), so a claim is never stale: a cell whose claimant
died is free again at once. A scan that finds a cell claimed skips it, finishes its other
cells, then waits for the claim to be released and takes the cell only if no record appeared.
The lock files are left in place (removing one could let two processes lock different files
of the same name).

Locks need a file system with working ``flock`` (local disks; NFS emulates it with POSIX
locks on Linux). On platforms without ``fcntl`` claims always succeed and scans into one
directory must not run at the same time.
"""
import os
import socket
from pathlib import Path

try:
    import fcntl
except ImportError:                # not POSIX: no claims
    fcntl = None


def claim_path(out_dir, key):
    """The lock file of the cell ``key``."""
    return Path(out_dir) / "claims" / f"{key}.lock"


class Claim:
    """An exclusive claim on one cell, held until :meth:`release` or the process's end."""

    def __init__(self, fd):
        self._fd = fd

    def release(self):
        """Give the cell up (idempotent)."""
        if self._fd is not None:
            if fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def try_claim(out_dir, key):
    """A :class:`Claim` on the cell ``key``, or None if a live process holds it."""
    path = claim_path(out_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
    return Claim(fd)


def claimant(out_dir, key):
    """``"PID HOST"`` of the last process that claimed the cell ``key`` ("" if none)."""
    try:
        return claim_path(out_dir, key).read_text().strip()
    except OSError:
        return ""


def wait_for_release(out_dir, key):
    """Block until no process holds the claim on the cell ``key``."""
    if fcntl is None:
        return
    path = claim_path(out_dir, key)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    finally:
        os.close(fd)             # closing releases the shared lock at once
