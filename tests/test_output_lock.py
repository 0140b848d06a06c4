"""One writer per OUT: the lock beside OUT, per-run partial names, stale-file clean-up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from err_stream import cli
from err_stream.errors import ProcessingError, UserError
from err_stream.io.output_file import OutputFile, OutputLock, lock_holder, lock_path, partial_path

try:
    import clips
except ImportError:  # tests/ imported as a package
    from tests import clips

ROOT = Path(__file__).resolve().parents[1]

HOLDER = """
import sys
from pathlib import Path
from err_stream.io.output_file import OutputFile
with OutputFile(Path(sys.argv[1])) as p:
    print(p.tmp, flush=True)
    sys.stdin.readline()  # hold the lock until told to go (or killed)
    p.commit()
"""


def _holder(out: Path) -> tuple[subprocess.Popen, Path]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()  # bounded: the child prints once, or dies and closes stdout
    assert line, "the lock holder did not start"
    return proc, Path(line)


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait(30)
    return p.pid


def test_partial_names_are_per_run(tmp_path):
    out = tmp_path / "o.mkv"
    a, b = partial_path(out), partial_path(out)
    assert a != b and a.parent == tmp_path and a.suffix == ".mkv"
    assert a.name.startswith(f".o.mkv.err-stream-partial.{os.getpid()}-")


def test_second_writer_stops_at_once_naming_the_first(tmp_path, capsys):
    src = clips.make_h264_aac(tmp_path / "in.mp4", frames=4, audio=False)
    out = tmp_path / "out.mkv"
    proc, first_partial = _holder(out)
    try:
        assert lock_holder(out) == proc.pid
        t0 = time.monotonic()
        code = cli.main([str(src), str(out), "--passthrough", "--quiet", "--overwrite"])
        err = capsys.readouterr().err
        assert code == 1
        assert f"{out} is being written by another err-stream (pid {proc.pid})" in err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert time.monotonic() - t0 < 20  # stopped before decoding or loading anything heavy
        assert not out.exists() and first_partial.exists()  # the other run's file is untouched
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert out.exists() and not first_partial.exists() and not lock_path(out).exists()


def test_a_killed_writer_leaves_nothing_that_blocks_the_next(tmp_path, capsys):
    src = clips.make_h264_aac(tmp_path / "in.mp4", frames=4, audio=False)
    out = tmp_path / "out.mkv"
    proc, partial = _holder(out)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert partial.exists() and lock_path(out).exists()  # nobody cleans up after SIGKILL
    assert lock_holder(out) is None  # but the kernel released the lock with the process
    code = cli.main([str(src), str(out), "--passthrough", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert out.exists()
    assert {p.name for p in tmp_path.iterdir()} == {"in.mp4", "out.mkv"}


def test_stale_partials_go_only_when_their_owner_is_gone(tmp_path):
    out = tmp_path / "o.mp4"
    dead = partial_path(out, pid=_dead_pid())
    alive = partial_path(out, pid=os.getppid())  # our parent is running
    old_style = tmp_path / ".o.mp4.err-stream-partial.mp4"
    unrelated = tmp_path / ".other.mp4.err-stream-partial.1-ab.mp4"
    for p in (dead, alive, old_style, unrelated):
        p.write_bytes(b"x")
    with OutputLock(out) as lock:
        removed = lock.remove_stale_partials()
    assert set(removed) == {dead, old_style}
    assert alive.exists() and unrelated.exists() and not lock_path(out).exists()


def test_the_lock_is_exclusive_within_and_across_processes(tmp_path):
    out = tmp_path / "o.mp4"
    with OutputLock(out):
        assert lock_holder(out) == os.getpid()
        with pytest.raises(UserError, match=rf"is being written by another err-stream \(pid {os.getpid()}\)"):
            OutputLock(out).acquire()
    assert lock_holder(out) is None
    OutputLock(out).acquire()  # free again (and the file is reused)


def test_a_failed_commit_is_one_line_and_leaves_nothing(tmp_path):
    out = tmp_path / "o.mp4"
    with pytest.raises(ProcessingError, match="could not put the finished output in place") as e:
        with OutputFile(out) as p:
            p.tmp.unlink()  # e.g. removed by a cleaner; rename then fails
            p.commit()
    assert "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == []
