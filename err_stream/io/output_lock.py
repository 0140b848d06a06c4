"""One writer per destination file: an advisory lock beside OUT and per-run partial names.

While a run writes ``OUT`` it holds ``.OUT.err-stream-lock`` (in OUT's folder) locked with
``flock`` and writes its pid into it. The kernel drops the lock when the process dies, however
it dies, so a lock file left behind by a killed run is never mistaken for a live writer; a
second run for the same OUT finds the lock held and stops before it does any work.

Each run writes into its own partial file, ``.OUT.err-stream-partial.<pid>-<random>.EXT``:
two runs can never write into, or rename, each other's frames. Partial files whose owner is
gone (a killed run) are removed by the next run that holds the lock.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import secrets
from pathlib import Path

from ..errors import UserError

try:
    import fcntl
except ImportError:  # Windows: O_EXCL creation and a pid check instead of flock
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

PARTIAL_MARK = ".err-stream-partial"
LOCK_MARK = ".err-stream-lock"


def lock_path(out: Path) -> Path:
    return out.with_name(f".{out.name}{LOCK_MARK}")


def partial_path(out: Path, pid: int | None = None) -> Path:
    """A partial-file name no other run can pick: the owner's pid and 48 random bits."""
    pid = os.getpid() if pid is None else pid
    return out.with_name(f".{out.name}{PARTIAL_MARK}.{pid}-{secrets.token_hex(6)}{out.suffix}")


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def _busy(out: Path, pid: int | None) -> UserError:
    who = f"pid {pid}" if pid is not None else "pid unknown"
    return UserError(
        f"{out} is being written by another err-stream ({who}); wait for it to finish, stop it, "
        f"or write to another file"
    )


def lock_holder(out: Path) -> int | None:
    """The pid of the live run writing ``out`` (None if nobody is), without taking the lock."""
    path = lock_path(out)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        pid = _read_pid(fd)
        if fcntl is None:
            return pid if pid is not None and pid_alive(pid) and pid != os.getpid() else None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return pid if pid is not None else -1
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class OutputLock:
    """Exclusive right to write ``out`` for this process; :meth:`acquire` raises
    :class:`UserError` naming the other writer's pid when it is taken."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.path = lock_path(out)
        self.fd: int | None = None

    def acquire(self) -> None:
        # A few rounds at most: each retry means the previous owner released it between our
        # open and our flock (it unlinks the file it locked), so the next open gets a new file.
        for _ in range(20):
            if fcntl is None:
                if self._acquire_exclusive_create():
                    return
                continue
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            except OSError as e:
                raise UserError(f"{self.out.parent}: cannot write here ({e.strerror})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                pid = _read_pid(fd)
                os.close(fd)
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise _busy(self.out, pid) from None
                raise UserError(f"{self.path}: cannot lock the output ({e.strerror})") from None
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self.fd = fd
            return
        raise UserError(f"{self.out}: could not lock the output (its lock file keeps changing)")

    def _acquire_exclusive_create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                return False
            pid = _read_pid(fd)
            os.close(fd)
            if pid is not None and pid_alive(pid):
                raise _busy(self.out, pid) from None
            log.info("removing %s left by a run that is gone (pid %s)", self.path, pid)
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            return False
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.unlink(self.path)  # while still holding it: a waiting run then retries on a fresh file
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = None

    def remove_stale_partials(self) -> list[Path]:
        """Partial files of OUT whose owner is gone (only called while holding the lock)."""
        removed = []
        pattern = re.compile(re.escape(f".{self.out.name}{PARTIAL_MARK}") + r"(?:\.(\d+)-[0-9a-f]+)?" + re.escape(self.out.suffix) + "$")
        for p in self.out.parent.glob(f".{glob_escape(self.out.name)}{PARTIAL_MARK}*"):
            m = pattern.match(p.name)
            if m is None:
                continue
            pid = int(m.group(1)) if m.group(1) else None  # no pid: the old single-name scheme
            if pid is not None and pid != os.getpid() and pid_alive(pid):
                log.warning("leaving %s: its owner (pid %d) is still running", p, pid)
                continue
            try:
                p.unlink()
            except FileNotFoundError:
                continue
            log.info("removed %s left by an interrupted run", p)
            removed.append(p)
        return removed

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)
