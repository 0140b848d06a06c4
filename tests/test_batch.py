"""``err-stream batch``: job files, keyframe pieces on Ray (2 CPU workers), the manifest.

Ray starts once for the module (2 CPUs, small object store, no dashboard; this machine only). Clips are tiny
H.264 files with B-frames, irregular timestamps and an AAC track; the model is the embedded
demo model on CPU (fp32, one frame per call), so a piece's frames do not depend on which
process restored them and FFV1 output can be compared frame for frame.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from err_stream import cli
from err_stream.colour import ColourSpec

try:
    import clips
except ImportError:  # tests/ imported as a package
    from tests import clips

ROOT = Path(__file__).resolve().parents[1]
ray = pytest.importorskip("ray", reason="the batch extra (Ray) is not installed")

from pipelines import shipped_jobs  # noqa: E402
from pipelines.job import JobError, load_job, parse_job  # noqa: E402
from pipelines.manifest import MANIFEST_NAME  # noqa: E402
from pipelines.segments import plan_segments  # noqa: E402

# Irregular frame times (ms) with keyframes every 5 frames: cuts fall between uneven gaps.
VFR_MS = [0, 40, 80, 200, 233, 300, 420, 430, 500, 620, 700, 733, 800, 850, 900, 1000, 1040, 1100, 1150, 1200]
TB = Fraction(1, 12000)


def dark_planes(i: int, w: int, h: int, dim: bool = True):
    """A dim version of the tests' moving pattern: what the low-light demo model is for (on
    mid-grey pictures its output leaves [0, 1] and the output guard rightly stops the run).
    Jobs still say accept_out_of_range, so that other demo weights cannot fail the plumbing
    these tests are about."""
    y, cb, cr = clips.yuv_planes(i, w, h)
    if not dim:
        return y, cb, cr
    scale = lambda p, zero: (zero + (p.astype(np.float32) - zero) * 0.1).round().astype(np.uint8)  # noqa: E731
    return scale(y, 16), scale(cb, 128), scale(cr, 128)


def make_vfr_bframes(path: Path, frames: int = 20, audio: bool = True, chapters: bool = False, dim: bool = True) -> Path:
    """Dark H.264 with B-frames (decode order != display order), a closed GOP every 5
    frames, irregular timestamps, BT.709 tags, and an AAC track."""
    tags = clips.BT709
    with av.open(str(path), "w") as c:
        v = clips._video_stream(c, "libx264", 64, 48, "yuv420p", 25, TB, tags,
                                {"crf": "18", "preset": "fast", "g": "5", "keyint_min": "5", "sc_threshold": "0", "bf": "2"})
        a = None
        if audio:
            a = c.add_stream("aac", rate=48000)
            a.layout = "stereo"
        if chapters:
            c.set_chapters([
                {"id": 1, "start": 0, "end": 600, "time_base": Fraction(1, 1000), "metadata": {"title": "first"}},
                {"id": 2, "start": 600, "end": 1250, "time_base": Fraction(1, 1000), "metadata": {"title": "second"}},
            ])
        c.metadata["title"] = "batch test clip"
        for i in range(frames):
            f = clips.fill(av.VideoFrame(64, 48, "yuv420p"), dark_planes(i, 64, 48, dim), tags)
            f.pts = VFR_MS[i % len(VFR_MS)] * 12 + (i // len(VFR_MS)) * 1250 * 12
            f.time_base = TB
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        if a is not None:
            clips._encode_audio(c, a, 1.25 * (1 + (frames - 1) // len(VFR_MS)))
    return path


@pytest.fixture(scope="module")
def ray_cluster():
    """One small local Ray for the module; the batch driver uses it instead of starting one."""
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "RAY_memory_monitor_refresh_ms")}
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    # Ray's memory monitor kills workers when the machine (shared with other jobs) is short of
    # memory; the lost-worker test must see only the loss it causes.
    os.environ["RAY_memory_monitor_refresh_ms"] = "0"
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False,
             object_store_memory=80 * 1024**2, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def write_job(folder: Path, text: str) -> Path:
    p = folder / "job.yaml"
    p.write_text(textwrap.dedent(text))
    return p


def batch(*args, capsys) -> tuple[int, dict | None, str]:
    code = cli.main(["batch", *[str(a) for a in args], "--json", "--quiet"])
    out, err = capsys.readouterr()
    try:
        return code, (json.loads(out) if out.strip() else None), err
    except json.JSONDecodeError:
        raise AssertionError(f"stdout is not the JSON report: {out!r}\nstderr: {err}") from None


def manifest_rows(folder: Path, table: str) -> list[dict]:
    db = sqlite3.connect(str(folder / MANIFEST_NAME))
    db.row_factory = sqlite3.Row
    rows = [dict(r) for r in db.execute(f"SELECT * FROM {table}")]
    db.close()
    return rows


# ----------------------------------------------------------------------------- job files
def test_every_job_error_is_reported_with_its_key_path_and_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.mp4").write_bytes(b"")
    job = write_job(tmp_path, """\
        inputs:
          - a.mp4
          - path: missing/*.mov
            crf: high
        output_dir: out
        weights: demo
        preset: uhd-ll
        codc: libx264
        name: "{stem}-{take}"
        segment_seconds: -3
        encoder_opt: [tune]
    """)
    with pytest.raises(JobError) as e:
        load_job(job)
    msg = str(e.value)
    for expected in (
        "job.yaml:3:11: inputs[1].path: missing/*.mov: matches no files",
        "job.yaml:4:10: inputs[1].crf: expected a number ≥ 0, got 'high'",
        "job.yaml:7:1: preset: give 'weights' or 'preset', not both",
        "job.yaml:8:1: codc: unknown key; did you mean 'codec'?",
        "job.yaml:9:7: name: '{stem}-{take}': unknown field {take}",
        "job.yaml:10:18: segment_seconds: expected a number ≥ 0, got -3",
        "job.yaml:11:15: encoder_opt[0]: 'tune': expected key=value",
    ):
        assert expected in msg, msg
    assert msg.startswith(f"{job}: 7 problems")
    assert msg.index("inputs[1].path") < msg.index("codc") < msg.index("encoder_opt")  # in the file's order
    # The command line says the same and exits 1 before running anything.
    assert cli.main(["batch", str(job)]) == 1


def test_yaml_syntax_error_and_missing_model_name_the_line(tmp_path):
    with pytest.raises(JobError, match=r"job.yaml:2:\d+: not valid YAML"):
        parse_job("inputs: [a.mp4\noutput_dir: [\n", Path("job.yaml"))
    with pytest.raises(JobError, match="name the model"):
        parse_job("inputs: []\noutput_dir: out\n", Path("job.yaml"))


def test_the_smallest_job_is_three_lines_and_outputs_keep_their_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "masters").mkdir()
    for n in ("b.mov", "a.mov", "c.mp4"):
        (tmp_path / "masters" / n).write_bytes(b"x")
    job = parse_job('inputs: ["masters/*.mov"]\noutput_dir: restored/\nweights: demo\n', Path("job.yaml"))
    assert [(str(i.path), str(i.output)) for i in job.inputs] == [("masters/a.mov", "restored/a.mov"), ("masters/b.mov", "restored/b.mov")]
    assert job.engine == "ray" and job.retries == 2 and job.inputs[0].settings == {"weights": "demo"}
    accepting = parse_job('inputs: ["masters/*.mov"]\noutput_dir: restored/\nweights: demo\naccept-out-of-range: true\n', Path("job.yaml"))
    assert accepting.inputs[0].settings == {"weights": "demo", "accept_out_of_range": True}


def test_per_input_overrides_and_transcoder_option_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for n in ("a.mov", "b.mov"):
        (tmp_path / n).write_bytes(b"x")
    (tmp_path / "list.txt").write_text("# masters\na.mov\n\nb.mov\n")
    job = parse_job(textwrap.dedent("""\
        inputs:
          - list.txt
          - path: a.mov
            output: special/a-strong.mkv
            preset: uhd-ll
            crf: 12
            encoder-opt: {tune: grain, x265-params: "aq-mode=3"}
        output_dir: out
        name: "{stem}_restored"
        container: mkv
        weights: demo
        codec: libx265
        pix-fmt: yuv420p10le
        encoder_preset: slow
        tile: 512x512
        precision: fp32
    """), Path("job.yaml"))
    a, b, special = job.inputs
    assert (str(a.output), str(b.output), str(special.output)) == ("out/a_restored.mkv", "out/b_restored.mkv", "special/a-strong.mkv")
    assert a.settings == {"weights": "demo", "codec": "libx265", "pix_fmt": "yuv420p10le", "encoder_preset": "slow",
                          "tile": "512x512", "precision": "fp32"}
    assert special.settings["preset"] == "uhd-ll" and "weights" not in special.settings
    assert special.settings["crf"] == 12 and special.settings["encoder_opt"] == ["tune=grain", "x265-params=aq-mode=3"]


def test_shipped_jobs_plan_on_real_clips(tmp_path, monkeypatch, capsys):
    """Each shipped job checks out and its encoder options pass the transcoder's dry run of
    the output, once clips match its inputs."""
    import yaml

    monkeypatch.chdir(tmp_path)
    jobs = shipped_jobs()
    assert len(jobs) >= 4
    for path in jobs:
        patterns = yaml.safe_load(path.read_text())["inputs"]
        for k, pattern in enumerate(patterns if isinstance(patterns, list) else [patterns]):
            pattern = pattern["path"] if isinstance(pattern, dict) else pattern
            f = tmp_path / pattern.replace("**/", "day1/").replace("*", f"clip{k}")
            f.parent.mkdir(parents=True, exist_ok=True)
            if f.suffix == ".mov":
                clips.make_prores_422_10bit(f)
            else:
                clips.make_h264_aac(f)
        code, report, err = batch(path, "--dry-run", capsys=capsys)
        assert code == 0, f"{path.name}: {err}"
        assert report["inputs"] and all(r["status"] == "planned" for r in report["inputs"]), (path.name, report)


# ----------------------------------------------------------------------------- planning
def test_cuts_are_made_at_closed_keyframes_only(tmp_path):
    src = make_vfr_bframes(tmp_path / "in.mp4", audio=False)
    plan = plan_segments(src, 0.3)
    assert plan.frames == 20 and [s.frames for s in plan.segments] == [5, 5, 5, 5]
    assert [round(s.start, 3) for s in plan.segments] == [0.0, 0.3, 0.7, 1.0]
    assert plan_segments(src, 0).segments[0].frames == 20
    assert [s.frames for s in plan_segments(src, 0.65).segments] == [10, 10]


def test_dry_run_lists_pieces_and_writes_nothing(tmp_path, capsys):
    src = make_vfr_bframes(tmp_path / "in.mp4", audio=False)
    job = write_job(tmp_path, f"""\
        inputs: [{src}]
        output_dir: {tmp_path / "out"}
        weights: demo
        segment_seconds: 0.3
    """)
    code, report, err = batch(job, "--dry-run", capsys=capsys)
    assert code == 0, err
    (item,) = report["inputs"]
    assert item["status"] == "planned" and item["frames"] == 20 and item["segments"] == 4
    assert item["output"] == str(tmp_path / "out" / "in.mp4")
    assert "in.mp4" in err and "would run" in err
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- running on Ray
@pytest.mark.slow
def test_ray_pieces_join_to_the_single_process_result(tmp_path, capsys, ray_cluster):
    """Two Ray workers restore four pieces; the joined FFV1 file has the same frames,
    timestamps, colour tags and audio as one `err-stream IN OUT` run. A corrupt input in
    the same job fails alone with the transcoder's message, and the exit code says so."""
    src = make_vfr_bframes(tmp_path / "clip.mkv", chapters=True)  # (MP4 stores chapters as a data track)
    bad = tmp_path / "broken.mkv"
    bad.write_bytes(src.read_bytes()[:1500])
    out = tmp_path / "out"
    job = write_job(tmp_path, f"""\
        inputs: [{src}, {bad}]
        output_dir: {out}
        weights: demo
        accept_out_of_range: true
        precision: fp32
        codec: ffv1
        container: mkv
        segment_seconds: 0.3
        workers: 2
        cpus_per_worker: 1
    """)
    code, report, err = batch(job, capsys=capsys)
    assert code == 2, err
    good, broken = report["inputs"]
    assert good["status"] == "done" and good["frames"] == 20 and good["segments"] == 4, good["error"]
    assert broken["status"] == "failed" and str(bad) in broken["error"], broken
    assert "corrupt" in broken["error"] or "truncated" in broken["error"] or "not a video" in broken["error"]
    assert "1 failed" in err

    segments = manifest_rows(out, "segments")
    assert {r["state"] for r in segments} == {"done"} and {r["attempts"] for r in segments} == {1}
    assert len({r["worker"] for r in segments}) == 2  # both workers took pieces
    assert not (out / ".err-stream-pieces").exists()

    # The single-process reference, with the same thread count as a worker.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ref = tmp_path / "ref.mkv"
        assert cli.main([str(src), str(ref), "--weights", "demo", "--precision", "fp32", "--codec", "ffv1", "--quiet", "--accept-out-of-range"]) == 0
    finally:
        torch.set_num_threads(threads)
    capsys.readouterr()
    joined = out / "clip.mkv"
    a_frames, a_pts, a_tb, a_first = clips.decode_all(ref)
    b_frames, b_pts, b_tb, b_first = clips.decode_all(joined)
    assert len(b_frames) == len(a_frames) == 20
    assert a_tb == b_tb and a_pts == b_pts
    assert all(np.array_equal(x, y) for fa, fb in zip(a_frames, b_frames) for x, y in zip(fa, fb))
    assert ColourSpec.from_av(b_first) == ColourSpec.from_av(a_first)
    assert [p for p, _ in clips.packets(joined, "audio")] == [p for p, _ in clips.packets(src, "audio")]
    with av.open(str(joined)) as c:
        assert [ch["metadata"].get("title") for ch in c.chapters()] == ["first", "second"]
        assert c.metadata.get("title") == "batch test clip"


def _workers_writing_into(folder: Path) -> list[int]:
    """Ray worker processes (named after their actor) with a file in ``folder`` open: the
    ones in the middle of a piece."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if not (d / "cmdline").read_bytes().startswith(b"ray::SegmentWorker"):
                continue
            if any(os.readlink(fd).startswith(str(folder)) for fd in (d / "fd").iterdir()):
                pids.append(int(d.name))
        except OSError:
            continue
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds Ray's worker processes through /proc")
def test_a_lost_worker_is_replaced_and_its_piece_tried_again(tmp_path, capsys, ray_cluster):
    src = make_vfr_bframes(tmp_path / "clip.mp4", frames=10, audio=False)
    out = tmp_path / "out"
    job = write_job(tmp_path, f"""\
        inputs: [{src}]
        output_dir: {out}
        weights: demo
        accept_out_of_range: true
        codec: ffv1
        container: mkv
        segment_seconds: 0.3
        retries: 1
        workers: 2
        cpus_per_worker: 1
    """)
    killed: list[int] = []

    def kill_one_busy_worker():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            for pid in _workers_writing_into(out / ".err-stream-pieces"):
                os.kill(pid, signal.SIGKILL)  # a worker of this module's own Ray, mid-piece
                killed.append(pid)
                return
            time.sleep(0.02)

    import threading

    killer = threading.Thread(target=kill_one_busy_worker)
    killer.start()
    code, report, err = batch(job, capsys=capsys)
    killer.join()
    assert killed, "no busy worker was seen"
    assert code == 0, err
    assert report["inputs"][0]["status"] == "done" and report["inputs"][0]["frames"] == 10
    segments = manifest_rows(out, "segments")
    assert sorted(r["attempts"] for r in segments) == [1, 2], segments
    assert all(r["state"] == "done" for r in segments)


@pytest.mark.slow
def test_kill_9_of_the_driver_then_resume_redoes_only_unfinished_pieces(tmp_path, capsys, ray_cluster):
    """A driver joined to a running Ray cluster (--address: this module's) is killed with
    SIGKILL once two pieces are recorded as done; the resumed run (in-process: the manifest
    is the same whatever the engine) redoes only the others, and a third run leaves the
    finished output alone."""
    src = make_vfr_bframes(tmp_path / "clip.mp4", frames=20, audio=False)
    out = tmp_path / "out"
    job = write_job(tmp_path, f"""\
        inputs: [{src}]
        output_dir: {out}
        weights: demo
        accept_out_of_range: true
        codec: ffv1
        container: mkv
        segment_seconds: 0.1
        workers: 2
        cpus_per_worker: 1
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    cmd = [sys.executable, "-m", "err_stream.cli", "batch", str(job), "--quiet"]
    address = ray.get_runtime_context().gcs_address
    driver = subprocess.Popen([*cmd, "--address", address], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and driver.poll() is None:
            if (out / MANIFEST_NAME).exists():
                try:
                    done = [r for r in manifest_rows(out, "segments") if r["state"] == "done"]
                except sqlite3.DatabaseError:
                    done = []
                if len(done) >= 2:
                    break
            time.sleep(0.05)
        assert driver.poll() is None, driver.stderr.read().decode()
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(10)

        rows = manifest_rows(out, "segments")
        finished_before = {r["idx"]: r["finished"] for r in rows if r["state"] == "done"}
        assert 2 <= len(finished_before) < len(rows) == 4
        assert not (out / "clip.mkv").exists()

        resumed = subprocess.run([*cmd, "--resume", "--json", "--engine", "local"], env=env, capture_output=True, timeout=240)
        assert resumed.returncode == 0, resumed.stderr.decode()
        report = json.loads(resumed.stdout)
        assert report["inputs"][0]["status"] == "done" and report["inputs"][0]["frames"] == 20
        after = {r["idx"]: r for r in manifest_rows(out, "segments")}
        for idx, finished in finished_before.items():  # finished pieces were not redone
            assert after[idx]["attempts"] == 1 and after[idx]["finished"] == finished
        assert all(r["state"] == "done" for r in after.values())
        assert len(manifest_rows(out, "runs")) == 2
        frames, pts, tb, _ = clips.decode_all(out / "clip.mkv")
        _, src_pts, src_tb, _ = clips.decode_all(src)
        assert len(frames) == 20 and [round(float(p * tb), 3) for p in pts] == [round(float(p * src_tb), 3) for p in src_pts]

        # A finished output is never written again: a third run leaves it alone.
        mtime = (out / "clip.mkv").stat().st_mtime_ns
        code, report, err = batch(job, "--resume", "--engine", "local", capsys=capsys)
        assert code == 0 and report["inputs"][0]["status"] == "done earlier", err
        assert (out / "clip.mkv").stat().st_mtime_ns == mtime
    finally:
        try:  # anything the killed driver started itself (its process group)
            os.killpg(driver.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def test_a_second_run_without_resume_is_refused(tmp_path, capsys):
    src = make_vfr_bframes(tmp_path / "in.mp4", frames=5, audio=False)
    job = write_job(tmp_path, f"""\
        inputs: [{src}]
        output_dir: {tmp_path / "out"}
        passthrough: true
        codec: ffv1
        container: mkv
        engine: local
    """)
    code, report, err = batch(job, capsys=capsys)
    assert code == 0 and report["inputs"][0]["status"] == "done", err
    code, report, err = batch(job, capsys=capsys)
    assert code == 1 and "--resume" in err


@pytest.mark.parametrize("weights,wording", [
    ("diverging", "the model's output cannot be trusted"),
    ("over_exposing", "the model's output is over-exposed"),
])
def test_refused_output_fails_the_input_once_with_the_job_files_wording(weights, wording, request, tmp_path, capsys):
    """Weights that return their input + 3 diverge (far out of range); weights that return
    their input + 0.5 over-expose it (finite, within [-0.5, 2]). Either way the output check
    stops the input (no retry: it would fail the same way), says which of the two it saw and
    which job key accepts such output."""
    kind = weights
    weights = request.getfixturevalue(weights)
    src = make_vfr_bframes(tmp_path / "in.mp4", frames=5, audio=False, dim=False)
    job = write_job(tmp_path, f"""\
        inputs: [{src}]
        output_dir: {tmp_path / "out"}
        weights: {weights}
        codec: ffv1
        container: mkv
        engine: local
    """)
    code, report, err = batch(job, capsys=capsys)
    assert code == 2 and report["inputs"][0]["status"] == "failed", err
    message = report["inputs"][0]["error"]
    assert f"frame 0: {wording}" in message and "pass 'accept_out_of_range: true' in the job file to clamp" in message
    assert ("diverge" in message) == (kind == "diverging") and ("already lit" in message) == (kind != "diverging")
    assert "trying again" not in err and not (tmp_path / "out" / "in.mkv").exists()


def test_a_vpy_script_is_restored_in_one_piece(tmp_path, capsys):
    """VapourSynth scripts have frames, not packets: the transcoder renders them whole."""
    script = tmp_path / "grade.vpy"
    script.write_text(textwrap.dedent("""\
        import vapoursynth as vs
        core = vs.core
        clip = core.std.BlankClip(format=vs.YUV420P8, width=64, height=48, length=6, fpsnum=25, fpsden=1, color=[40, 128, 128])
        clip = core.std.SetFrameProps(clip, _Matrix=vs.MATRIX_BT709, _Primaries=vs.PRIMARIES_BT709, _Transfer=vs.TRANSFER_BT709)
        clip.set_output(0)
    """))
    job = write_job(tmp_path, f"""\
        inputs: [{script}]
        output_dir: {tmp_path / "out"}
        container: mkv
        passthrough: true
        codec: ffv1
        segment_seconds: 0.1
        engine: local
    """)
    code, report, err = batch(job, capsys=capsys)
    assert code == 0, err
    (item,) = report["inputs"]
    assert item["status"] == "done" and item["frames"] == 6 and item["segments"] == 1, item
    frames, _, _, _ = clips.decode_all(tmp_path / "out" / "grade.mkv")
    assert len(frames) == 6 and all(int(f[0].max()) == 40 for f in frames)


@pytest.mark.parametrize("container, codec", [("mkv", "libx264"), ("ts", "libx264"), ("mov", "prores_ks")])
def test_joined_b_frame_and_intra_outputs_keep_every_timestamp(tmp_path, capsys, container, codec):
    """Pieces with B-frames (decode times before presentation times) and intra-only pieces
    join into Matroska, MPEG-TS and QuickTime with the frames and times of one transcoder run."""
    src = make_vfr_bframes(tmp_path / "in.mp4", frames=20)
    out = tmp_path / "out"
    job = write_job(tmp_path, f"""\
        inputs: [{src}]
        output_dir: {out}
        passthrough: true
        codec: {codec}
        container: {container}
        segment_seconds: 0.3
        engine: local
    """)
    code, report, err = batch(job, capsys=capsys)
    assert code == 0, err
    assert report["inputs"][0]["segments"] == 4
    ref = tmp_path / f"ref.{container}"
    assert cli.main([str(src), str(ref), "--passthrough", "--codec", codec, "--quiet"]) == 0
    capsys.readouterr()
    a_frames, a_pts, a_tb, _ = clips.decode_all(ref)
    b_frames, b_pts, b_tb, _ = clips.decode_all(out / f"in.{container}")
    assert len(b_frames) == len(a_frames) == 20
    assert [float(p * b_tb) for p in b_pts] == [float(p * a_tb) for p in a_pts]
    assert len(clips.packets(out / f"in.{container}", "audio")) == len(clips.packets(src, "audio"))


def test_size_is_a_job_key_and_every_piece_is_scaled(tmp_path, capsys):
    """size: the pieces are scaled like a single `err-stream IN OUT --size` run, and join into
    the same frames; a bad size is reported at its line."""
    with pytest.raises(JobError, match=r"job.yaml:\d+:\d+: size: expected a picture size, width x height \(e.g. 1920x1080\), got 'big'"):
        parse_job(f"inputs: []\noutput_dir: out\npassthrough: true\nsize: big\n", Path("job.yaml"))
    src = make_vfr_bframes(tmp_path / "in.mp4", frames=20, audio=False)
    out = tmp_path / "out"
    job = write_job(tmp_path, f"""\
        inputs: [{src}]
        output_dir: {out}
        passthrough: true
        codec: ffv1
        container: mkv
        size: 32x24
        segment_seconds: 0.3
        engine: local
    """)
    assert load_job(job).inputs[0].request.options.encode.size == (32, 24)
    code, report, err = batch(job, capsys=capsys)
    assert code == 0, err
    assert report["inputs"][0]["segments"] == 4
    ref = tmp_path / "ref.mkv"
    assert cli.main([str(src), str(ref), "--passthrough", "--codec", "ffv1", "--size", "32x24", "--quiet"]) == 0
    capsys.readouterr()
    a_frames, a_pts, _, a_first = clips.decode_all(ref)
    b_frames, b_pts, _, b_first = clips.decode_all(out / "in.mkv")
    assert (b_first.width, b_first.height) == (a_first.width, a_first.height) == (32, 24)
    assert len(b_frames) == 20 and a_pts == b_pts
    assert all(np.array_equal(x, y) for fa, fb in zip(a_frames, b_frames) for x, y in zip(fa, fb))


def test_one_progress_bar_counts_frames_across_pieces(tmp_path, capsys):
    src = make_vfr_bframes(tmp_path / "in.mp4", frames=20, audio=False)
    job = write_job(tmp_path, f"""\
        inputs: [{src}]
        output_dir: {tmp_path / "out"}
        passthrough: true
        codec: ffv1
        container: mkv
        segment_seconds: 0.3
        engine: local
    """)
    assert cli.main(["batch", str(job)]) == 0
    out, err = capsys.readouterr()
    assert "done    20" in out and "20/20" in err and "frame/s" in err
    assert err.count("batch:") >= 2 and "restoring" not in err  # one bar for the batch, none per piece
