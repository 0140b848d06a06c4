"""Write tests/data/ from the full reference dump (run once, by hand; kept for the record).

    python tests/data/make_golden_fixtures.py /path/to/golden

/path/to/golden holds what the reference implementation produced: err_seed0_io.pt (input,
outputs and intermediates as a pickled dict), err_seed0_official_format.pth (the seeded
weights in the published basicsr layout) and err_state_dict_keys.txt. The checkpoint and
the key listing are copied unchanged; the tensors are written to one safetensors file,
subsampled as `tests/golden.py` describes, with each tensor's stride in the metadata.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from golden import DATA, GOLDEN_CKPT, GOLDEN_IO, GOLDEN_KEYS, grid_sample  # noqa: E402

# Tensors at full resolution (the model's input and the contract: the final output).
WHOLE = {"input", "out"}
# Large intermediates (128x192 maps) on a coarser grid; everything else every 2nd row/column.
STRIDE_4 = {"embed_in", "deep1", "convf", "dct"}


def main(src: Path) -> None:
    ref = torch.load(src / "err_seed0_io.pt", map_location="cpu", weights_only=False)
    assert torch.equal(ref["padded_input"], ref["input"]), "input needed no padding"
    tensors: dict[str, torch.Tensor] = {}
    strides: dict[str, int] = {}
    for name in ("input", "out", "out1", "out2"):
        strides[name] = 1 if name in WHOLE else 2
        tensors[name] = grid_sample(ref[name], strides[name])
    for name, t in ref["intermediates"].items():
        if name == "idct":
            # Upstream's IDCT keeps only the DC coefficient: its output is one constant per
            # channel. Store that constant and the per-channel spread that shows it.
            tensors["idct.value"] = t[:, :, 0, 0].clone()
            tensors["idct.std"] = t.std(dim=(2, 3))
            continue
        strides[name] = 4 if name in STRIDE_4 else 2
        tensors[name] = grid_sample(t, strides[name])
    # The frequency branch's input is deep1's sum over the frame: keep it exactly.
    tensors["deep1.sum"] = ref["intermediates"]["deep1"].double().sum(dim=(2, 3))
    meta = {"seed": str(ref["seed"]), "strides": json.dumps(strides), "config": json.dumps(ref["config"])}
    DATA.mkdir(exist_ok=True)
    save_file(tensors, GOLDEN_IO, metadata=meta)
    shutil.copyfile(src / "err_seed0_official_format.pth", GOLDEN_CKPT)
    shutil.copyfile(src / "err_state_dict_keys.txt", GOLDEN_KEYS)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
