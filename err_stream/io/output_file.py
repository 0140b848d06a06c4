"""Output files: one writer per destination, and nothing half-written.

Every file err-stream writes (a transcoded video, a restored image, a batch's joined output
and its report) goes through :class:`OutputFile`: OUT is written into this run's own partial
file beside it and renamed into place only when complete; anything else (an error, Ctrl-C)
removes the partial file and leaves OUT, new or pre-existing, untouched.

While a run writes ``OUT`` it holds ``.OUT.err-stream-lock`` (in OUT's folder) locked with
``flock`` and writes its pid into it. The kernel drops the lock when the process dies, however
it dies, so a lock file left behind by a killed run is never mistaken for a live writer; a
second run for the same OUT finds the lock held and stops before it does any work. (Without
``flock``, on Windows, the lock file is created exclusively and a stale one is recognised by
its dead pid.) A batch driver holds the same kind of lock on its output folder.

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
from collections.abc import Callable
from pathlib import Path

from ..errors import ProcessingError, UserError, named

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


# What a held lock is reported as: (the locked path, the holder's pid if known) -> the error.
BusyWording = Callable[[Path, "int | None"], UserError]


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
    :class:`UserError` naming the other writer's pid when it is taken. ``lock``: the lock
    file (default ``.OUT.err-stream-lock`` beside OUT); ``busy``: how a held lock is worded."""

    def __init__(self, out: Path, lock: Path | None = None, busy: BusyWording = _busy) -> None:
        self.out = out
        self.path = lock_path(out) if lock is None else lock
        self.busy = busy
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
                    raise self.busy(self.out, pid) from None
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
                raise self.busy(self.out, pid) from None
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


class OutputFile:
    """OUT, written atomically by this run. Making one checks that OUT can be written (a file
    name in an existing folder, not the input, not being written by another run, and not
    already there unless ``overwrite``); entering it takes the lock and creates the run's
    partial file :attr:`tmp`, which the caller fills; :meth:`commit` renames it into place.
    Leaving without a commit removes it. Partial files left by killed runs are removed by the
    next run for the same OUT."""

    def __init__(self, out: str | Path, overwrite: bool = False, source: Path | None = None) -> None:
        out = Path(out)
        self.out = out
        if out.is_dir():
            raise UserError(f"{out}: is a folder; give a file name such as {out / ('restored' + (out.suffix or '.mp4'))}")
        if not out.parent.is_dir():
            what = "is not a folder" if out.parent.exists() else "no such folder"
            raise UserError(f"{out.parent}: {what}; cannot write {out.name} there")
        holder = lock_holder(out)
        if holder is not None and holder != os.getpid():
            raise _busy(out, holder)
        if out.exists() and not overwrite:
            raise UserError(f"{out}: already exists (use {named('overwrite')} to replace it)")
        if source is not None and out.exists() and out.resolve() == Path(source).resolve():
            raise UserError(f"{out}: is the input file; write to another file")
        self.tmp = partial_path(out)
        self.lock = OutputLock(out)
        self.committed = False

    def __enter__(self) -> OutputFile:
        self.lock.acquire()
        try:
            self.lock.remove_stale_partials()
            try:
                with open(self.tmp, "xb"):
                    pass
            except OSError as e:
                raise UserError(f"{self.out.parent}: cannot write here ({e.strerror})") from None
        except BaseException:
            self.lock.release()
            raise
        return self

    def commit(self) -> None:
        try:
            os.replace(self.tmp, self.out)
        except OSError as e:
            raise ProcessingError(f"{self.out}: could not put the finished output in place ({e.strerror or e}); "
                                  f"nothing was written there") from None
        self.committed = True

    def __exit__(self, *exc) -> None:
        try:
            if not self.committed:
                try:
                    self.tmp.unlink()
                except FileNotFoundError:
                    pass
        finally:
            self.lock.release()


def write_file(out: Path, data: bytes) -> None:
    """Replace ``out`` with ``data`` atomically (a small file: a report, a manifest's summary)."""
    with OutputFile(out, overwrite=True) as f:
        f.tmp.write_bytes(data)
        f.commit()
