"""The fast model path: registered ops, one compiled graph, channels_last, half weights with
float32 islands, compile-time reporting, CUDA graphs (CUDA only)."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from err_stream import ERR, Restorer
from err_stream.engine.fast import FastForward, compile_cache_dir, float32_parameters, prepare_model
from err_stream.model.layers import ChannelLayerNorm, PixelShuffle
from err_stream.model.lfr import ScanBlock
from err_stream.ops import selective_scan
from err_stream.ops.scan import _selective_scan_op, selective_scan_reference

from test_ops import scan_inputs  # tests/ is on sys.path (pytest rootdir insertion)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a.clamp(0, 1) - b.clamp(0, 1)) ** 2).mean().item()
    return 10 * math.log10(1 / max(mse, 1e-20))


@pytest.fixture(scope="module")
def frame() -> torch.Tensor:
    """A 128 x 256 frame with structure (gradients, texture)."""
    gen = torch.Generator().manual_seed(7)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 128), torch.linspace(0, 1, 256), indexing="ij")
    base = torch.stack([0.1 + 0.3 * xx, 0.15 + 0.2 * yy, 0.1 + 0.1 * torch.sin(9 * xx * yy)])
    return (base + 0.03 * torch.randn(3, 128, 256, generator=gen)).clamp(0, 1)[None]


@pytest.fixture(scope="module")
def reference_out(golden_model, frame) -> torch.Tensor:
    with torch.no_grad():
        return golden_model(frame)


# ---------------------------------------------------------------- registered ops


def test_scan_op_passes_opcheck():
    """Schema, fake (meta) kernel and autograd registration of the registered scan op."""
    u, delta, A, B, C, D, bias = scan_inputs(1, 8, 40, n=4, g=2)
    torch.library.opcheck(_selective_scan_op, (u, delta, A, B, C, D, bias, True, "torch"))
    # Without softplus the raw dt must be positive (a decaying state), as in test_ops.
    torch.library.opcheck(_selective_scan_op, (u, delta.abs() * 0.2, A, B, C, None, None, False, ""))


def test_scan_op_gradient_equals_reference():
    """The op's own backward, used under torch.compile (on CPU with numba: the forward again,
    saving checkpoints, then numba's backward; elsewhere the torch backend recomputed)."""
    u, delta, A, B, C, D, bias = scan_inputs(1, 8, 60, n=4, g=2, seed=4)
    weight = torch.randn(1, 8, 60, generator=torch.Generator().manual_seed(5))
    grads = []
    for run in ("op", "reference"):
        leaves = [t.clone().requires_grad_(True) for t in (u, delta, A, B, C, D, bias)]
        if run == "op":
            y = _selective_scan_op(*leaves, True, "numba")
        else:
            y = selective_scan_reference(*leaves, True)
        (y * weight).sum().backward()
        grads.append([t.grad for t in leaves])
    for name, g_op, g_ref in zip("u delta A B C D bias".split(), *grads):
        assert ((g_op - g_ref).abs().max() / g_ref.abs().max()).item() < 1e-4, name


# ---------------------------------------------------------------- one graph, compiled == eager


@pytest.mark.slow
def test_forward_is_one_graph_and_compiled_equals_eager(golden_model, reference_out, frame, monkeypatch, tmp_path):
    """torch.compile(fullgraph=True) of the whole forward: one graph, no break (fullgraph raises
    on any break: the same check as ``torch._dynamo.explain`` giving 1 graph / 0 breaks, for one
    trace instead of two), output equal to eager; the first call of each size is reported once."""
    for var in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):  # keep compile caches out of $HOME
        monkeypatch.setenv(var, str(tmp_path / var))
    graphs: list = []

    def counting_backend(gm, example_inputs):
        from torch._dynamo.backends.debugging import aot_eager

        graphs.append(gm)
        return aot_eager(gm, example_inputs)  # AOT tracing with the ops' fake kernels, no codegen

    reports: list = []
    fast = FastForward(
        golden_model, "cpu", compile=True, compile_backend=counting_backend,
        on_compile=lambda key, seconds: reports.append((key, seconds)),
    )
    y = fast(frame)
    assert len(graphs) == 1
    assert (y - reference_out).abs().max().item() <= 1e-5
    fast(frame)
    assert len(graphs) == 1, "the second call of the same size must not recompile"
    assert len(reports) == 1 and reports[0][0] == (1, 128, 256, torch.float32) and reports[0][1] > 0
    assert fast.compile_seconds == {reports[0][0]: reports[0][1]}


def test_inductor_compiles_a_scan_block_equal_to_eager():
    """Inductor's generated code around the registered scan op (a small block: compiling the
    whole ERR on a CPU takes minutes; benchmarks/bench_model.py --compile measures that)."""
    torch.manual_seed(0)
    block = nn.Sequential()
    block.add_module("scan", ScanBlock(32).eval())
    t = torch.randn(1, 8, 12, 32)
    with torch.no_grad():
        eager = block(t)
        compiled = torch.compile(block, fullgraph=True, dynamic=False)(t)
    assert (compiled - eager).abs().max().item() <= 1e-5


def test_compile_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ERR_STREAM_CACHE", str(tmp_path))
    assert compile_cache_dir() == tmp_path / "compile"
    monkeypatch.delenv("ERR_STREAM_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile_cache_dir() == tmp_path / "xdg" / "err-stream" / "compile"


# ---------------------------------------------------------------- layout


def test_pixel_shuffle_keeps_channels_last():
    x = torch.randn(2, 36, 5, 7).contiguous(memory_format=torch.channels_last)
    y = PixelShuffle(3)(x)
    assert torch.equal(y, nn.PixelShuffle(3)(x.contiguous()))
    assert y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()
    assert PixelShuffle(3)(x.contiguous()).is_contiguous()  # NCHW stays NCHW


def test_channel_layer_norm_keeps_layout_and_computes_in_float32():
    norm = ChannelLayerNorm(6)
    with torch.no_grad():
        norm.body.weight.uniform_(0.5, 1.5)
        norm.body.bias.uniform_(-0.2, 0.2)
    x = torch.randn(1, 6, 9, 11) * 40 + 300  # a large mean: half-precision statistics would lose it
    ref = norm(x)
    assert ref.is_contiguous()
    cl = norm(x.contiguous(memory_format=torch.channels_last))
    assert cl.is_contiguous(memory_format=torch.channels_last) and torch.allclose(cl, ref, atol=1e-5)
    half = norm(x.bfloat16())
    assert half.dtype == torch.bfloat16
    exact = norm(x.bfloat16().float())  # the same (rounded) input, normalised in float32
    # Only the output's rounding remains (2^-8 relative); statistics in bfloat16 would be off by
    # about one input step (2 at 300), i.e. ~5 % of a channel's spread.
    assert (half.float() - exact).abs().max().item() < 0.01 * exact.abs().max().item()


def test_fast_model_convolutions_see_channels_last(golden_model):
    """channels_last end to end: every convolution gets channels_last input, except the SS2D
    depthwise convolution, whose NCHW output is the scan's (B, D, L) layout."""
    fast = FastForward(golden_model, "cpu")
    wrong = []
    hooks = [
        mod.register_forward_pre_hook(lambda _m, inp, n=name: wrong.append(n) if not (
            inp[0].is_contiguous(memory_format=torch.channels_last) and not inp[0].is_contiguous()) else None)
        for name, mod in fast.model.named_modules() if isinstance(mod, nn.Conv2d)
    ]
    try:
        fast(torch.rand(1, 3, 128, 256))
    finally:
        for h in hooks:
            h.remove()
    assert wrong and all(n.endswith("self_attention.conv2d") for n in wrong), wrong


# ---------------------------------------------------------------- precision


def test_prepare_model_keeps_float32_islands(golden_model):
    fast = prepare_model(golden_model, torch.bfloat16)
    islands = {name for name, _ in float32_parameters(fast)}
    assert any("FW_KAN1" in n for n in islands) and any(n.endswith("A_logs") for n in islands)
    assert any(n.endswith("norm1.body.weight") for n in islands)
    for name, p in fast.named_parameters():
        assert p.dtype == (torch.float32 if name in islands else torch.bfloat16), name
    assert next(golden_model.parameters()).dtype == torch.float32, "the original must stay as it was"
    conv = fast.enter1[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last)


def test_fast_fp32_equals_reference(golden_model, reference_out, frame):
    y = FastForward(golden_model, "cpu")(frame)
    assert y.dtype == torch.float32 and y.is_contiguous()
    assert (y - reference_out).abs().max().item() <= 1e-5


def test_restorer_fast_path_whole_and_tiled(golden_model):
    x = torch.rand(1, 3, 200, 300, generator=torch.Generator().manual_seed(3))
    ref = Restorer(golden_model, fast=False, tiling="off").restore(x)
    fast = Restorer(golden_model, tiling="off")
    assert fast.fast is not None and not fast.fast.compile  # on CPU: eager channels_last by default
    whole = fast.restore(x)
    assert (whole - ref).abs().max().item() <= 1e-5
    tiled = Restorer(golden_model, tiling=(128, 128)).restore(x)
    assert (tiled - whole).abs().max().item() <= 1e-5
    # Half precision is judged on trained weights in test_precision.py.


# ---------------------------------------------------------------- CUDA


@pytest.mark.gpu
@needs_cuda
def test_cuda_fast_path_compiled_graphs_equal_eager(golden_model, reference_out, frame, monkeypatch):
    import copy

    # float32 means float32 here: no TF32 in the convolutions (cuDNN's default allows it).
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    x = frame.cuda()
    ref = reference_out.cuda()
    fp32 = FastForward(golden_model, "cuda", compile=True, cuda_graphs=True)
    assert next(golden_model.parameters()).device.type == "cpu", "the caller's model must stay where it was"
    y = fp32(x)
    assert (y - ref).abs().max().item() <= 1e-4  # CPU reference against cuDNN/inductor float32
    y2 = fp32(x * 0.5)  # the same graph, replayed on new input
    with torch.no_grad():
        eager2 = copy.deepcopy(golden_model).cuda()(x * 0.5)
    assert (y2 - eager2).abs().max().item() <= 1e-4
    assert len(fp32._graphs) == 1
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        y3 = fp32(x)
    torch.cuda.synchronize()
    assert len(fp32._graphs) == 2  # one graph per stream (per executor slot)
    assert (y3 - y).abs().max().item() <= 1e-6
    for dtype in (torch.float16, torch.bfloat16):
        half = FastForward(golden_model, "cuda", dtype, compile=True, cuda_graphs=True)
        assert psnr(half(x), ref) >= 50, dtype


CHUNKED_CHECK = r"""
import json, sys
sys.path.insert(0, "tests")
from err_stream.ops._triton_kernels import selective_scan_triton_chunked
from err_stream.ops.scan import selective_scan_reference
from test_ops import scan_inputs
errs = {}
for shape, opts in [((1, 8, 150, 16, 2), (True, True, True)), ((1, 6, 37, 5, 3), (False, False, False)),
                    ((2, 4, 700, 16, 1), (True, False, True))]:
    u, delta, A, B, C, D, bias = scan_inputs(*shape)
    if not opts[2]:
        delta = delta.abs() * 0.2
    args = (u, delta, A, B, C, D if opts[0] else None, bias if opts[1] else None, opts[2])
    ref = selective_scan_reference(*args)
    # chunks of 16 and 16 chunks per carry step: several carry steps and ragged tails
    y = selective_scan_triton_chunked(*args, chunk=16, block_chunks=16)
    errs[str(shape)] = ((y - ref).abs().max() / ref.abs().max()).item()
print(json.dumps(errs))
"""


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton missing")
def test_chunk_parallel_triton_scan_in_interpreter():
    """The chunk-parallel Triton scan (one program per row and chunk, chunks chained by an
    associative scan), run by Triton's CPU interpreter, against the reference."""
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(root))
    proc = subprocess.run([sys.executable, "-c", CHUNKED_CHECK], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    errs = json.loads(proc.stdout.strip().splitlines()[-1])
    assert max(errs.values()) < 1e-5, errs


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("shape", [(2, 64, 1000, 16, 4), (1, 12, 129, 5, 3), (1, 256, 4096, 16, 4)])
def test_chunk_parallel_triton_scan_on_cuda(shape):
    u, delta, A, B, C, D, bias = (t.cuda() for t in scan_inputs(*shape))
    ref = selective_scan_reference(u, delta, A, B, C, D, bias, True)
    y = selective_scan(u, delta, A, B, C, D, bias, True, backend="triton_chunked")
    assert ((y - ref).abs().max() / ref.abs().max()).item() < 1e-5


# ---------------------------------------------------------------- graphs, lanes, dtypes (issue 17)
# CUDA graphs cannot run here; their bookkeeping can: FastForward rehearses the graph path on
# the CPU (static buffers per shape and lane, the capture lock, replay counts) with a plain
# call in place of the graph.


def test_graph_rehearsal_replays_once_per_call_and_equals_eager(golden_model):
    frame = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(5))
    eager = FastForward(golden_model, "cpu")
    graphed = FastForward(golden_model, "cpu", cuda_graphs=True, rehearse_graphs=True)
    assert graphed.specialises_shapes and not eager.specialises_shapes
    assert "graph rehearsal" in graphed.describe()
    with torch.inference_mode():
        first, second = graphed(frame), graphed(frame * 0.5)
    assert graphed.graph_replays == 2  # measured: one replay per call
    assert torch.equal(first, eager(frame)) and torch.equal(second, eager(frame * 0.5))
    assert graphed.captured() == {("default",): [((1, 3, 128, 128), torch.float32)]}
    graphed.release()
    assert graphed.captured() == {}
    with pytest.raises(ValueError, match="rehearse_graphs"):
        FastForward(golden_model, "cpu", cuda_graphs=True)


def test_graph_capture_waits_for_the_process_wide_capture_lock(golden_model):
    """Two executors starting at once must not capture at the same time."""
    import threading
    import time

    from err_stream.engine.fast import CAPTURE_LOCK, GraphLane, graph_lane

    ff = FastForward(golden_model, "cpu", cuda_graphs=True, rehearse_graphs=True)
    calls = []
    hook = ff.model.register_forward_pre_hook(lambda m, a: calls.append(1))
    x = torch.rand(1, 3, 128, 128)
    done = threading.Event()

    def capture() -> None:
        with graph_lane(GraphLane("other")):
            ff(x)
        done.set()

    CAPTURE_LOCK.acquire()
    try:
        t = threading.Thread(target=capture)
        t.start()
        deadline = time.monotonic() + 120
        while len(calls) < 2 and time.monotonic() < deadline:  # its two warm-up calls
            done.wait(0.05)
        assert len(calls) == 2
        assert not done.wait(1.0) and len(calls) == 2  # the capture itself waits for the lock
    finally:
        CAPTURE_LOCK.release()
    t.join(120)
    hook.remove()
    assert done.is_set() and len(calls) == 4  # the capture, then the replay
    assert len(ff.captured()) == 1


def test_mamba_kernel_gets_the_dtypes_it_accepts():
    """mamba_ssm's selective_scan refuses per-token B/C of another dtype than u (its
    selective_scan.cpp checks); the model hands it half u/delta with float32 B/C. The kernel's
    rules, checked on what the model really passes and on what mamba_inputs makes of it."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from err_stream.model.lfr import SS2D
    from err_stream.ops.scan import check_mamba_inputs, mamba_inputs

    class Record(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.calls = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.err_stream.selective_scan.default:
                self.calls.append(args[:7])
            return func(*args, **(kwargs or {}))

    torch.manual_seed(0)
    for dtype in (torch.float16, torch.bfloat16):
        ss = next(m for m in prepare_model(ERR(), dtype, channels_last=False).modules() if isinstance(m, SS2D))
        with torch.inference_mode(), Record() as rec:
            ss(torch.randn(1, 6, 10, ss.in_proj.in_features).to(dtype))
        (raw,) = rec.calls
        assert raw[0].dtype == dtype and raw[3].dtype == torch.float32  # what the model passes
        with pytest.raises(ValueError, match="B is torch.float32 but must be"):
            check_mamba_inputs(*raw)
        fixed = mamba_inputs(*raw)
        check_mamba_inputs(*fixed)
        assert all(t is None or t.dtype == torch.float32 for t in fixed)
        # The values are the model's (widened, not changed): the reference scan agrees.
        want = selective_scan_reference(*raw)
        assert torch.allclose(selective_scan_reference(*fixed), want)


def test_cache_dir_without_platformdirs_follows_the_xdg_rules(monkeypatch, tmp_path):
    """The GPU machines' Python has no platformdirs; every compile asks for the cache folder."""
    from err_stream.runtime import cache_dir

    monkeypatch.delenv("ERR_STREAM_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with_platformdirs = cache_dir()
    monkeypatch.setitem(sys.modules, "platformdirs", None)  # import platformdirs -> ImportError
    assert cache_dir() == with_platformdirs == tmp_path / "xdg" / "err-stream"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "err-stream"
    assert compile_cache_dir() == tmp_path / "home" / ".cache" / "err-stream" / "compile"
