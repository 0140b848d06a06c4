"""The output guard (issue 9 item 5) and the streaming executor that applies it.

Non-finite output, or more than 0.1 % of pixels outside [-0.1, 1.1], must stop every front
end with an error naming the frame (nothing written), unless the user accepts and clamps.
The diverging models are real ERR checkpoints: the golden one with its last convolution
scaled up (finite garbage) or given a NaN bias; the over-exposing one has that convolution
replaced so that it returns its input + 0.5 (conftest.py; finite, too bright, within
[-0.5, 2]: worded as over-exposure, not divergence, issue 18 item 6).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from err_stream import restore_image
from err_stream.cli import main
from err_stream.engine import ExecutorClosed, OutputRangeError, Restorer, StreamingExecutor
from err_stream.engine.output_check import check_output, clamp_output, judge, output_stats
from err_stream.image import read_image, write_image
from err_stream.weights import save_checkpoint

REPO = Path(__file__).resolve().parents[1]

try:
    import clips
except ImportError:  # tests/ imported as a package
    from tests import clips


# ----------------------------------------------------------------------------- diverging weights
@pytest.fixture(scope="module")
def blown_up(golden_model, tmp_path_factory) -> str:
    """Finite but garbage: the last convolution's weights times 1000."""
    sd = {k: v.clone() for k, v in golden_model.state_dict().items()}
    sd["out.2.weight"] *= 1000.0
    return str(save_checkpoint(sd, tmp_path_factory.mktemp("w") / "blown_up.pth"))


@pytest.fixture(scope="module")
def nan_weights(golden_model, tmp_path_factory) -> str:
    sd = {k: v.clone() for k, v in golden_model.state_dict().items()}
    sd["out.2.bias"][1] = float("nan")  # the green channel of every pixel
    return str(save_checkpoint(sd, tmp_path_factory.mktemp("w") / "nan.pth"))


# ----------------------------------------------------------------------------- the rule
def test_rule_counts_pixels_and_draws_the_line_at_a_thousandth():
    y = torch.rand(2, 3, 100, 100) * 0.9 + 0.05  # 10,000 pixels a frame: 10 may leave the range
    y[0, 0, 0, :10] = 1.5  # frame 0: 10 pixels out (one channel each): allowed
    y[1, :, 1, :10] = -0.5  # frame 1: 11 pixels out, over three channels: refused
    y[1, 2, 2, 0] = 7.0
    stats = output_stats(y)
    assert stats.dtype == torch.float64 and stats.shape == (2, 4)
    assert stats[0].tolist()[:2] == [0, 10] and stats[1].tolist()[:2] == [0, 11]
    assert stats[1, 2] == pytest.approx(-0.5) and stats[1, 3] == pytest.approx(7.0)
    judge(stats[:1], 10_000)
    with pytest.raises(OutputRangeError) as e:
        judge(stats, 10_000, first_frame=40)
    assert e.value.frame == 41 and e.value.nonfinite == 0 and e.value.outside_fraction == pytest.approx(11e-4)
    assert (e.value.minimum, e.value.maximum) == (pytest.approx(-0.5), pytest.approx(7.0))
    assert "frame 41" in str(e.value) and "accept_out_of_range=True" in str(e.value)


def test_the_error_tells_over_exposure_from_divergence():
    """Same rule, two wordings: finite values within [-0.5, 2] are a brightness mismatch (the
    likely cause and what to do), anything else divergence."""
    y = torch.full((5, 3, 40, 50), 0.5)  # 2,000 pixels a frame: 3 may leave the range
    y[0, :, 0, :10] = 1.3  # too bright
    y[1, 1, 0, :10] = -0.3  # too dark
    y[2, 0, 0, :10] = 2.0  # still over-exposure at the edge
    y[3, 0, 0, :10] = 2.01  # beyond: divergence
    y[4, 2, 0, :10] = -7.0
    messages = {}
    for i in range(5):
        with pytest.raises(OutputRangeError) as e:
            judge(output_stats(y[i : i + 1]), 2000, first_frame=i)
        messages[i] = (e.value.diverged, str(e.value))
    for i in (0, 2):
        diverged, text = messages[i]
        assert not diverged and text.startswith(f"frame {i}: the model's output is over-exposed (0.5% of pixels")
        assert "already lit" in text and "weights made for this kind of footage" in text
        assert "accept_out_of_range=True to clamp such output to [0, 1]" in text and "diverge" not in text
    diverged, text = messages[1]
    assert not diverged and text.startswith("frame 1: the model's output is too dark") and "diverge" not in text
    for i in (3, 4):
        diverged, text = messages[i]
        assert diverged and text.startswith(f"frame {i}: the model's output cannot be trusted") and "these weights diverge" in text
    cli = OutputRangeError(None, 0, 0.03, -0.075, 1.289).for_option("--accept-out-of-range", where="in.mp4")
    assert str(cli).startswith("in.mp4: the model's output is over-exposed (3% of pixels outside [-0.1, 1.1]; values from -0.075 to 1.289)")
    assert "pass --accept-out-of-range to clamp" in str(cli)


def test_any_non_finite_value_is_refused_and_clamping_repairs_it():
    y = torch.full((1, 3, 64, 64), 0.5)
    y[0, 1, 5, 5] = float("nan")
    y[0, 2, 6, 6] = float("inf")
    with pytest.raises(OutputRangeError, match=r"frame 0: .*2 non-finite values.*from 0.5 to 0.5") as e:
        check_output(y)
    assert e.value.nonfinite == 2
    cli = e.value.for_option("--accept-out-of-range", where="a.png", frame=None)
    assert str(cli).startswith("a.png: the model's output") and "--accept-out-of-range" in str(cli)
    clamp_output(y)
    assert torch.isfinite(y).all() and y[0, 1, 5, 5] == 0 and y[0, 2, 6, 6] == 1


# ----------------------------------------------------------------------------- the executor (CPU mode)
class WithoutFastPath:
    """What the executor asks of a restorer besides ``restore``, for a model without a fast
    path: it never specialises shapes, so it has no graphs to release."""

    device = torch.device("cpu")
    precision = "fp32"
    specialises_shapes = False

    def release_graphs(self, lane=None) -> None:
        pass


class Squeezed(WithoutFastPath):
    """The golden model with its output mapped into [0.2, 0.8] by a fixed affine map (its raw
    range is about [-1, 1.3]), then multiplied by ``gain`` for the frames numbered in ``bad``
    (each test frame carries its number in its first sample)."""

    def __init__(self, model, bad=(), gain=100.0):
        self.inner, self.bad, self.gain = Restorer(model, tiling="off"), set(bad), gain
        self.device, self.precision = self.inner.device, self.inner.precision

    def restore(self, x):
        y = self.inner.restore(x) * 0.25 + 0.45
        for i in range(x.shape[0]):
            if round(float(x[i, 0, 0, 0]) * 100) in self.bad:
                y[i] *= self.gain
        return y


def numbered(n: int, h: int = 32, w: int = 48) -> torch.Tensor:
    x = torch.rand(3, h, w, generator=torch.Generator().manual_seed(n)) * 0.02 + 0.3
    x[0, 0, 0] = n / 100
    return x


def test_executor_results_equal_the_restorer_in_order_with_batches(golden_model):
    restorer = Restorer(golden_model, tiling="off")
    frames = [numbered(n) for n in range(5)]
    want = restorer.restore(torch.stack(frames)).clamp(0, 1)
    with StreamingExecutor(restorer, max_batch=2, input_shape=(3, 32, 48), input_slots=3, accept_out_of_range=True) as ex:
        tickets = []
        for start in (0, 2, 4):
            slots = []
            for f in frames[start : start + 2]:
                slot = ex.input_slot()
                slot.tensor.copy_(f)
                slots.append(slot)
            tickets.append(ex.submit(slots))
        got = []
        for t in tickets:
            with t as out:
                got.append(out.clone())
    assert [t.index for t in tickets] == [0, 2, 4] and [t.size for t in tickets] == [2, 2, 1]
    assert torch.allclose(torch.cat(got), want, atol=1e-5)


def test_executor_guard_names_the_frame_and_accepting_clamps(golden_model):
    frames = [numbered(n) for n in range(5)]
    with StreamingExecutor(Squeezed(golden_model, bad={3})) as ex:
        tickets = [ex.submit([f], index=10 + n) for n, f in enumerate(frames)]
        for n, t in enumerate(tickets):
            if n == 3:
                with pytest.raises(OutputRangeError) as e:
                    t.result()
                assert e.value.frame == 13 and e.value.outside_fraction > 0.5
                with pytest.raises(OutputRangeError):
                    t.result()  # the same error again; the buffer is already back in the pool
                t.release()
            else:
                with t as out:
                    assert out.shape == (1, 3, 32, 48) and 0.1 < float(out.min()) and float(out.max()) < 0.9
    with StreamingExecutor(Squeezed(golden_model, bad={3}), accept_out_of_range=True) as ex:
        peaks = []
        for f in frames[2:4]:
            with ex.submit([f]) as out:
                assert float(out.min()) >= 0
                peaks.append(float(out.max()))
        assert peaks[0] < 0.9 and peaks[1] == 1 and ex.clamped_frames == 1


def test_executor_close_is_idempotent_joins_its_thread_and_cancels_queued_work():
    started, release = threading.Event(), threading.Event()

    class Slow(WithoutFastPath):
        def restore(self, x):
            started.set()
            release.wait(10)
            return x

    ex = StreamingExecutor(Slow(), depth=2)
    thread = ex._state.thread
    first = ex.submit([torch.full((3, 8, 8), 0.5)])
    queued = ex.submit([torch.full((3, 8, 8), 0.5)])
    assert started.wait(30)  # the first batch is running, the second queued
    closer = threading.Thread(target=ex.close)
    closer.start()
    release.set()
    closer.join(10)
    assert not closer.is_alive() and not thread.is_alive() and ex.closed
    with first as out:  # the batch that was running finished
        assert float(out.mean()) == pytest.approx(0.5)
    with pytest.raises(ExecutorClosed):
        queued.result()
    ex.close()
    with pytest.raises(ExecutorClosed):
        ex.submit([torch.zeros(3, 8, 8)])
    with pytest.raises(ValueError, match="1 to 1 frames"):
        StreamingExecutor(Slow()).submit([torch.zeros(3, 8, 8)] * 2)


def test_executor_hands_compute_errors_to_the_ticket():
    class Broken(WithoutFastPath):
        def restore(self, x):
            raise RuntimeError("kaboom")

    with StreamingExecutor(Broken()) as ex:
        with pytest.raises(RuntimeError, match="kaboom"):
            ex.submit([torch.zeros(3, 8, 8)]).result()
        with pytest.raises(RuntimeError, match="kaboom"):  # and keeps serving
            ex.submit([torch.zeros(3, 8, 8)]).result()


_BUSY_AT_EXIT = """
import sys, time, torch
from err_stream.engine import StreamingExecutor

class Busy:  # about 2 s of short torch ops, each of which releases the GIL while it runs
    device = torch.device("cpu")
    specialises_shapes = False
    def release_graphs(self, lane=None):
        pass
    def restore(self, x):
        w, t0 = torch.rand(8, 3, 3, 3), time.perf_counter()
        while time.perf_counter() - t0 < 2.0:
            torch.nn.functional.conv2d(torch.rand(1, 3, 128, 128), w, padding=1)
        return x

ex = StreamingExecutor(Busy())
ticket = ex.submit([torch.zeros(3, 8, 8)])
time.sleep(0.3)  # the executor's thread is now inside torch
print("leaving with the executor busy", file=sys.stderr)
"""


@pytest.mark.slow
def test_interpreter_exit_with_a_busy_executor_is_clean(tmp_path):
    """A thread still inside a torch op when Python finalises dies in pthread_exit on its
    way back into the interpreter, which aborts the process from a C++ destructor
    ("terminate called without an active exception": a plain daemon thread running the same
    loop aborts every time with Python 3.12). The executor is closed, and its thread joined,
    by an atexit hook before that."""
    script = tmp_path / "busy.py"
    script.write_text(_BUSY_AT_EXIT)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0 and "terminate" not in run.stderr, run.stderr[-2000:]
    assert "leaving with the executor busy" in run.stderr


# ----------------------------------------------------------------------------- front ends
def test_restore_image_raises_and_accept_clamps(nan_weights):
    from err_stream import load_model

    model = load_model(nan_weights, device="cpu")
    image = np.full((40, 60, 3), 0.3, np.float32)
    with pytest.raises(OutputRangeError, match="non-finite"):
        restore_image(model, image)
    out = restore_image(model, image, accept_out_of_range=True)
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1 and (out[..., 1] == 0).all()


def test_transcoder_stops_with_exit_2_and_writes_nothing(blown_up, tmp_path, capsys, caplog):
    src = clips.make_h264_aac(tmp_path / "in.mp4", w=64, h=48, frames=3, audio=False)
    out = tmp_path / "out.mkv"
    common = [str(src), str(out), "--weights", blown_up, "--codec", "ffv1", "--quiet", "--device", "cpu"]
    assert main(common) == 2
    err = capsys.readouterr().err
    assert "frame 0: the model's output cannot be trusted" in err and "--accept-out-of-range" in err
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["in.mp4"]
    with caplog.at_level(logging.WARNING, logger="err_stream"):
        assert main([*common, "--accept-out-of-range", "--json"]) == 0
    assert "3 of 3 frames failed the output check" in caplog.text
    assert json.loads(capsys.readouterr().out)["frames"] == 3
    frames = clips.decode_all(out)[0]
    assert len(frames) == 3 and max(int(p.max()) for f in frames for p in f) <= 255


def test_transcoder_words_over_exposure_for_the_command_line(over_exposing, tmp_path, capsys):
    src = clips.make_h264_aac(tmp_path / "in.mp4", w=64, h=48, frames=3, audio=False)
    out = tmp_path / "out.mkv"
    assert main([str(src), str(out), "--weights", over_exposing, "--codec", "ffv1", "--quiet", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "frame 0: the model's output is over-exposed" in err and "already lit" in err
    assert "pass --accept-out-of-range to clamp" in err and "diverge" not in err
    assert not out.exists()


def test_transcoder_names_the_frame_that_diverges(golden_model, tmp_path):
    from err_stream.video import transcode

    src = clips.make_h264_aac(tmp_path / "in.mp4", w=64, h=48, frames=4, audio=False)
    out = tmp_path / "out.mkv"

    class FromThirdCall(Squeezed):
        calls = 0

        def restore(self, x):
            FromThirdCall.calls += 1
            y = super().restore(x)
            return y * 100 if FromThirdCall.calls >= 3 else y

    with pytest.raises(OutputRangeError) as e:
        transcode(src, out, FromThirdCall(golden_model), codec="ffv1", progress=None, batch=1)
    assert e.value.frame == 2 and "accept_out_of_range=True" in str(e.value)
    assert not out.exists()


def test_image_command_fails_and_accept_writes(nan_weights, tmp_path, capsys):
    src, out = tmp_path / "a.png", tmp_path / "b.png"
    write_image(src, np.full((40, 60, 3), 90, np.uint8))
    args = ["image", str(src), str(out), "--weights", nan_weights, "--device", "cpu", "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{src}: the model's output cannot be trusted" in err and "--accept-out-of-range" in err
    assert not out.exists()
    assert main([*args, "--accept-out-of-range"]) == 0
    assert (read_image(out)[..., 1] == 0).all()


def test_image_command_words_over_exposure(over_exposing, tmp_path, capsys):
    src, out = tmp_path / "a.png", tmp_path / "b.png"
    write_image(src, np.full((40, 60, 3), 200, np.uint8))  # a bright picture: 1.28 once restored
    assert main(["image", str(src), str(out), "--weights", over_exposing, "--device", "cpu", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{src}: the model's output is over-exposed" in err and "pass --accept-out-of-range to clamp" in err
    assert "frame" not in err and not out.exists()


def test_vapoursynth_filter_words_over_exposure(over_exposing):
    vs = pytest.importorskip("vapoursynth")
    from vs_plugin import err

    clip = vs.core.std.BlankClip(width=64, height=48, format=vs.RGBS, length=3, color=[0.7, 0.8, 0.9])
    with pytest.raises(vs.Error, match=r"err: frame 1: the model's output is over-exposed .*pass accept_out_of_range=True to clamp"):
        err(clip, weights=over_exposing, device_index=-1).get_frame(1)


def test_vapoursynth_filter_raises_and_accept_clamps(nan_weights):
    vs = pytest.importorskip("vapoursynth")
    from vs_plugin import err

    clip = vs.core.std.BlankClip(width=64, height=48, format=vs.RGBS, length=3, color=[0.3, 0.4, 0.5])
    with pytest.raises(vs.Error, match=r"err: frame 2: the model's output cannot be trusted.*accept_out_of_range=True"):
        err(clip, weights=nan_weights, device_index=-1).get_frame(2)
    with pytest.raises(vs.Error, match="accept_out_of_range must be True or False"):
        err(clip, weights=nan_weights, device_index=-1, accept_out_of_range="yes")
    frame = err(clip, weights=nan_weights, device_index=-1, accept_out_of_range=True).get_frame(1)
    green = np.asarray(frame[1])
    assert np.isfinite(green).all() and (green == 0).all()


# ----------------------------------------------------------------------------- on a GPU
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_executor_equals_the_cpu_and_guards_on_the_host_copy(golden_model):
    import copy

    cpu = Squeezed(golden_model, bad={4})
    gpu = Squeezed(copy.deepcopy(golden_model).cuda(), bad={4})
    frames = [numbered(n) for n in range(6)]
    with StreamingExecutor(gpu, max_batch=2, depth=2, input_shape=(3, 32, 48), input_slots=4) as ex:
        tickets = []
        for start in range(0, 6, 2):
            slots = []
            for f in frames[start : start + 2]:
                slot = ex.input_slot()
                assert slot.tensor.is_pinned()
                slot.tensor.copy_(f)
                slots.append(slot)
            tickets.append(ex.submit(slots))  # three batches queued before any is collected
        got = {}
        for t in tickets:
            if t.index == 4:
                with pytest.raises(OutputRangeError) as e:
                    t.result()
                assert e.value.frame == 4
            else:
                with t as out:
                    assert out.device.type == "cpu" and out.is_pinned()
                    got.update({t.index + i: out[i].clone() for i in range(t.size)})
    assert sorted(got) == [0, 1, 2, 3]
    for n, y in got.items():
        want = cpu.restore(frames[n][None])[0]
        assert (y - want).abs().max() <= 2e-3, n  # TF32 convolutions on the GPU


# ----------------------------------------------------------------------------- graphs and shapes (issue 17)
# The graph path is rehearsed on the CPU (FastForward's static replay: the same lanes, keys,
# capture lock and replay counts as CUDA graphs, with a plain call in place of the graph).
def rehearsal_restorer(model) -> Restorer:
    from err_stream.engine.fast import FastForward

    restorer = Restorer(model, device="cpu", precision="fp32", tiling="off")
    restorer.fast = FastForward(restorer.model, "cpu", torch.float32, cuda_graphs=True, rehearse_graphs=True)
    return restorer


def test_each_executor_drops_its_graphs_when_it_closes(golden_model):
    """A batch worker makes an executor per piece: the graphs (and on CUDA their memory
    pools) must not pile up in the shared restorer."""
    restorer = rehearsal_restorer(golden_model)
    for n in range(3):
        with StreamingExecutor(restorer, max_batch=1, accept_out_of_range=True) as ex:
            with ex.submit([numbered(n)]):
                pass
            held = restorer.fast.captured()
            assert len(held) == 1 and list(held.values()) == [[((1, 3, 128, 128), torch.float32)]]
        assert restorer.fast.captured() == {}
    assert restorer.fast.graph_replays == 3


def test_two_executors_at_once_capture_and_replay_in_their_own_lanes(golden_model):
    """Two err() calls in one .vpy script: two executors on one restorer, fed from two threads."""
    restorer = rehearsal_restorer(golden_model)
    want = Restorer(golden_model, device="cpu", precision="fp32", tiling="off").restore(torch.stack([numbered(0), numbered(1)]))
    got: dict[int, torch.Tensor] = {}
    lanes: list[int] = []
    barrier = threading.Barrier(2, timeout=120)

    def feed(n: int) -> None:
        with StreamingExecutor(restorer, max_batch=1, accept_out_of_range=True) as ex:
            barrier.wait()  # both executors exist, neither has captured
            with ex.submit([numbered(n)]) as out:
                got[n] = out[0].clone()
            lanes.append(len(restorer.fast.captured()))
            barrier.wait()  # both have captured before either closes

    threads = [threading.Thread(target=feed, args=(n,)) for n in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    assert lanes == [2, 2]  # one lane each, side by side
    assert restorer.fast.captured() == {}
    for n in range(2):
        assert torch.allclose(got[n], want[n].clamp(0, 1), atol=1e-5), n


def test_short_batches_are_padded_so_a_stream_has_one_shape(golden_model):
    """The transcoder batches greedily (whatever has been decoded, up to --batch): each new
    batch size would be one more compile and capture mid-stream."""
    restorer = rehearsal_restorer(golden_model)
    frames = [numbered(n) for n in range(3)]
    want = Restorer(golden_model, device="cpu", precision="fp32", tiling="off").restore(torch.stack(frames)).clamp(0, 1)
    got = []
    with StreamingExecutor(restorer, max_batch=2, accept_out_of_range=True) as ex:
        for part in (frames[:2], frames[2:]):
            with ex.submit(part) as out:
                assert out.shape[0] == len(part)
                got.append(out.clone())
    assert restorer.fast.shapes == {(2, 128, 128, torch.float32)}
    assert restorer.fast.graph_replays == 2  # one per batch, the short one too
    assert torch.allclose(torch.cat(got), want, atol=1e-5)


def test_without_a_shape_specialised_path_batches_are_not_padded(golden_model):
    restorer = Restorer(golden_model, device="cpu", precision="fp32", tiling="off")  # eager: any batch is free
    with StreamingExecutor(restorer, max_batch=3, accept_out_of_range=True) as ex:
        for size in (3, 1):
            with ex.submit([numbered(n) for n in range(size)]):
                pass
    assert restorer.fast.shapes == {(3, 128, 128, torch.float32), (1, 128, 128, torch.float32)}


def test_warm_up_runs_at_the_stream_size_and_batch(golden_model):
    from err_stream.video.execution import warm_up

    restorer = rehearsal_restorer(golden_model)
    warm_up(restorer, 72, 136, batch=2)
    assert restorer.fast.shapes == {(2, 128, 256, torch.float32)}  # 136x72 padded, two frames
    assert restorer.fast.captured() == {}  # the warm-up executor's graphs went with it
    with StreamingExecutor(restorer, max_batch=2, accept_out_of_range=True) as ex:
        with ex.submit([torch.rand(3, 72, 136)]):  # a short batch: padded to the warmed shape
            pass
    assert restorer.fast.shapes == {(2, 128, 256, torch.float32)}  # nothing new to compile mid-stream

    eager = Restorer(golden_model, device="cpu", precision="fp32", tiling="off")
    warm_up(eager, 72, 136, batch=2)  # no shape to specialise: a small frame is enough
    assert eager.fast.shapes == {(1, 128, 128, torch.float32)}


@pytest.mark.slow
def test_a_live_run_warms_up_at_the_stream_size_before_its_frames(golden_model, tmp_path, caplog):
    import streams

    from err_stream.video import transcode

    restorer = rehearsal_restorer(golden_model)
    port = streams.free_port()
    sender = subprocess.Popen(streams.sender_command(f"tcp://127.0.0.1:{port}", frames=5, fps=25, size="200x136"),
                              env=streams.child_env())
    try:
        with caplog.at_level(logging.DEBUG, logger="err_stream.video"):
            result = transcode(f"tcp://127.0.0.1:{port}?listen", tmp_path / "o.mkv", restorer, max_delay=2, batch=2,
                               timeout=60, accept_out_of_range=True, codec="ffv1")
        assert sender.wait(60) == 0
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait(30)
    assert result.frames == 5 and result.batch == 2
    assert "warming the model up at 200x136, batch 2" in caplog.text
    assert restorer.fast.shapes == {(2, 256, 256, torch.float32)}  # the warm-up's shape is the stream's
    assert restorer.fast.captured() == {}
