"""Which arithmetic the CPU's half-precision kernels really use (for precision reports).

A bfloat16 convolution on the CPU goes through oneDNN when the CPU has AVX-512 (its
``avx512_core_bf16`` kernels with AVX512-BF16, ``avx512_core_amx`` with AMX), and through
ATen's own fallback otherwise (e.g. with ``ONEDNN_MAX_CPU_ISA=AVX2``). Both take bf16
operands and accumulate in float32, but they block and order the sums differently, so a
half-precision result legitimately differs from one CPU to the next: a precision figure
means little without the kernel that produced it. oneDNN tells which kernel ran only through
its verbose log, which it reads from the environment once, when it starts; so the probe runs
in a child process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache

_PROBE = """
import torch
for dtype in (torch.bfloat16, torch.float16):
    conv = torch.nn.Conv2d(16, 16, 3, padding=1).to(dtype)
    with torch.no_grad():
        conv(torch.zeros(1, 16, 8, 8, dtype=dtype))
    print("probe-done", str(dtype).removeprefix("torch."), flush=True)
"""


@dataclass(frozen=True)
class HalfKernels:
    """oneDNN's ISA line and the convolution kernel each half dtype ran on (``"ATen fallback"``
    when oneDNN did not run it)."""

    onednn_isa: str
    bf16_conv: str
    fp16_conv: str

    def describe(self) -> str:
        return f"oneDNN isa: {self.onednn_isa}; bf16 conv: {self.bf16_conv}; fp16 conv: {self.fp16_conv}"


@lru_cache(maxsize=1)
def half_kernels() -> HalfKernels:
    """Probe (once per process) which kernels run bf16 and fp16 convolutions here, honouring
    this process's ``ONEDNN_MAX_CPU_ISA``."""
    env = dict(os.environ, ONEDNN_VERBOSE="1", DNNL_VERBOSE="1")
    try:
        out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=120).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        return HalfKernels(f"unknown ({e})", "unknown", "unknown")
    isa, conv = "not reported", {"bfloat16": "ATen fallback", "float16": "ATen fallback"}
    pending: str | None = None
    for line in out.splitlines():
        fields = line.split(",")
        if "isa:" in line and isa == "not reported":
            isa = line.split("isa:", 1)[1].strip()
        elif len(fields) > 6 and fields[3] == "exec" and fields[5] == "convolution":
            pending = fields[6]  # the implementation, e.g. brg_conv_fwd:avx512_core_amx
        elif line.startswith("probe-done"):
            if pending is not None:
                conv[line.split()[1]] = pending
            pending = None
    return HalfKernels(isa, conv["bfloat16"], conv["float16"])
