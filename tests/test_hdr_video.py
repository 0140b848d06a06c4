"""The HDR path in every front end, on clips made with PyAV (libx265, 10-bit, HDR10 metadata):
the transcoder (``--hdr``), batch jobs (``hdr:``), the VapourSynth filter (``hdr=``) and
``err-stream image`` (``--transfer``)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from err_stream import cli
from err_stream.colour import ColourSpec, HdrPath, PackedFrameColour, PlaneFormat, Range, Transfer, YCbCrConverter
from err_stream.io.source import probe

try:
    import clips
    from golden import GOLDEN_CKPT as GOLDEN
except ImportError:  # tests/ imported as a package
    from tests import clips
    from tests.golden import GOLDEN_CKPT as GOLDEN


def run_cli(*args, capsys=None) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr() if capsys is not None else ("", "")
    return code, out, err


def max_code_diff(a, b) -> int:
    return max(int(np.abs(x.astype(np.int64) - y.astype(np.int64)).max()) for fa, fb in zip(a, b) for x, y in zip(fa, fb))


def packed(planes) -> torch.Tensor:
    return torch.cat([torch.from_numpy(p.astype(np.int32).reshape(1, -1)) for p in planes], dim=1).to(torch.int16)


@pytest.mark.parametrize("tags", [clips.HDR10, clips.HLG], ids=["pq", "hlg"])
@pytest.mark.parametrize("pix_fmt", ["yuv420p10le", "yuv422p10le"])
@pytest.mark.parametrize("full", [False, True], ids=["limited", "full"])
def test_a_master_comes_back_code_for_code_through_the_hdr_path(tmp_path, capsys, tags, pix_fmt, full):
    """--passthrough (the model replaced by the identity) with the HDR path on (the default):
    every code value of a libx265 PQ/HLG master back in a lossless FFV1 output, whose light
    level is measured and reported."""
    tags = dataclasses.replace(tags, range=Range.FULL if full else Range.LIMITED)
    src = clips.make_hevc_hdr(tmp_path / "in.mkv", tags, pix_fmt, frames=3)
    out = tmp_path / "out.mkv"
    code, stdout, err = run_cli(src, out, "--passthrough", "--codec", "ffv1", "--json", "--quiet", capsys=capsys)
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["hdr"] == tags.transfer.label
    assert summary["max_cll"] > 0 and 0 < summary["max_fall"] <= summary["max_cll"]
    a, _, _, _ = clips.decode_all(src)
    b, _, _, fb = clips.decode_all(out)
    assert len(b) == len(a) == 3
    got = ColourSpec.from_av(fb)
    assert (got.matrix, got.range, got.primaries, got.transfer) == (tags.matrix, tags.range, tags.primaries, tags.transfer)
    assert max_code_diff(a, b) <= 1


def test_the_model_sees_the_sdr_referred_picture_and_x265_keeps_the_metadata(tmp_path, capsys):
    """With a model: each output frame is what HdrPath gives around the Restorer (computed
    here from the decoded input), unlike --hdr passthrough's; libx265 output keeps the input's
    HDR10 metadata, and the measured light level is reported beside it."""
    from err_stream.engine import Restorer
    from err_stream.engine.output_check import clamp_output
    from err_stream.weights import load_model

    src = clips.make_hevc_pq(tmp_path / "in.mkv", frames=2)
    outs, summaries = {}, {}
    for mode in ("auto", "passthrough"):
        outs[mode] = tmp_path / f"{mode}.mkv"
        code, stdout, err = run_cli(src, outs[mode], "--weights", GOLDEN, "--hdr", mode, "--codec", "ffv1", "--json", "--quiet",
                                    "--accept-out-of-range", capsys=capsys)
        assert code == 0, err
        summaries[mode] = summary = json.loads(stdout)
        assert summary["hdr"] == ("smpte2084" if mode == "auto" else None)
    restorer = Restorer(load_model(GOLDEN, device="cpu"), device="cpu", tiling="off")
    fmt = PlaneFormat.parse("yuv420p10le")
    path = HdrPath(Transfer.SMPTE2084, peak=1000.0)  # the clip's mastering display peak
    colour = PackedFrameColour(YCbCrConverter.for_spec(clips.HDR10), fmt, fmt, 64, 48, hdr=path)
    a, _, _, _ = clips.decode_all(src)
    b, _, _, _ = clips.decode_all(outs["auto"])
    c, _, _, _ = clips.decode_all(outs["passthrough"])
    cll = fall = 0.0
    for planes, got, other in zip(a, b, c):
        light = path.display_light(colour._signal(packed(got))).amax(dim=1).clamp(0, 10000)
        cll, fall = max(cll, float(light.max())), max(fall, float(light.mean()))
        codes = packed(planes)
        with torch.inference_mode():
            want = colour.from_rgb(clamp_output(restorer.restore(colour.to_rgb(codes))), codes)[0].to(torch.int32) & 0xFFFF
        assert int((packed(got)[0].to(torch.int32) & 0xFFFF).sub(want).abs().max()) <= 1
        assert max(int(np.abs(x.astype(int) - y.astype(int)).max()) for x, y in zip(got, other)) > 20

    hevc = tmp_path / "restored.mkv"
    code, stdout, err = run_cli(src, hevc, "--weights", GOLDEN, "--codec", "libx265", "--json", "--quiet", "--accept-out-of-range", capsys=capsys)
    assert code == 0, err
    summary = json.loads(stdout)
    info_in, info_out = probe(src), probe(hevc)
    assert info_out.hdr == info_in.hdr and info_out.hdr.max_cll == clips.HDR_MAX_CLL[0]  # kept: x265 takes it at open
    assert summary["max_cll"] is not None and summary["max_fall"] != clips.HDR_MAX_CLL[1]
    # The measured values can be written by a second encode: the user's max-cll wins.
    again = tmp_path / "again.mkv"
    code, _, err = run_cli(hevc, again, "--passthrough", "--quiet", "--codec", "libx265", "--encoder-opt",
                           f"x265-params=max-cll={summary['max_cll']},{summary['max_fall']}", capsys=capsys)
    assert code == 0, err
    info_again = probe(again)
    assert (info_again.hdr.max_cll, info_again.hdr.max_fall) == (summary["max_cll"], summary["max_fall"])
    assert info_again.hdr.max_luminance == info_in.hdr.max_luminance


def test_bad_hdr_settings_are_named_by_their_flags(tmp_path, capsys):
    src = clips.make_hevc_pq(tmp_path / "in.mkv", frames=1)
    code, _, err = run_cli(src, tmp_path / "o.mkv", "--passthrough", "--hdr-peak", "-5", capsys=capsys)
    assert code == 1 and "--hdr-peak -5" in err and "> 0" in err
    code, _, err = run_cli(src, tmp_path / "o.mkv", "--hdr", "tonemap", capsys=capsys)
    assert code != 0 and "--hdr" in err and "passthrough" in err


# ----------------------------------------------------------------------------- batch jobs
def test_hdr_is_a_job_key(tmp_path, capsys):
    """hdr: / hdr_peak: in a job file: checked at their line, and a job's HLG master comes
    back as `err-stream IN OUT` gives it (the same path in every piece)."""
    pytest.importorskip("yaml")
    from pipelines.job import JobError, load_job, parse_job

    with pytest.raises(JobError, match=r"job.yaml:\d+:\d+: hdr: 'tonemap': choose one of auto, passthrough"):
        parse_job("inputs: []\noutput_dir: out\npassthrough: true\nhdr: tonemap\n", Path("job.yaml"))
    with pytest.raises(JobError, match=r"job.yaml:\d+:\d+: hdr_peak: expected a number > 0"):
        parse_job("inputs: []\noutput_dir: out\npassthrough: true\nhdr_peak: 0\n", Path("job.yaml"))
    src = clips.make_hevc_hdr(tmp_path / "in.mkv", clips.HLG, frames=3)
    job = tmp_path / "job.yaml"
    job.write_text(f"inputs: [{src}]\noutput_dir: {tmp_path / 'out'}\npassthrough: true\ncodec: ffv1\nhdr: auto\nhdr_peak: 600\nengine: local\n")
    assert load_job(job).inputs[0].request.options.encode.hdr_peak == 600
    code = cli.main(["batch", str(job), "--quiet"])
    capsys.readouterr()
    assert code == 0
    a, _, _, _ = clips.decode_all(src)
    b, _, _, _ = clips.decode_all(tmp_path / "out" / "in.mkv")
    assert len(b) == 3 and max_code_diff(a, b) <= 1


# ----------------------------------------------------------------------------- images
def _pq_master_pixels(h: int = 40, w: int = 56) -> np.ndarray:
    """16-bit PQ R'G'B' (BT.2020) of a picture whose light reaches 1000 cd/m2."""
    rng = np.random.default_rng(9)
    light = torch.from_numpy(rng.random((1, 3, h, w)) ** 3 * 1000.0).float()
    light[:, 1, :4] = 0.0  # saturated: outside BT.709
    signal = HdrPath(Transfer.SMPTE2084).signal(light).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    return np.rint(signal * 65535).astype(np.uint16)


@pytest.mark.slow
def test_hdr_images_with_a_stated_transfer(tmp_path, golden_path, golden_model, capsys):
    """err-stream image: a 16-bit TIFF stated PQ by --transfer, and a PNG whose cICP says PQ,
    take the HDR path (the model sees the SDR-referred picture, as restore_image(hdr=...)
    computes it); the PNG output states PQ again; --hdr passthrough gives today's result."""
    from err_stream.colour import Primaries
    from err_stream.image import load_image, read_image, restore_image, write_image

    pixels = _pq_master_pixels()
    tif, png = tmp_path / "m.tif", tmp_path / "m.png"
    write_image(tif, pixels)
    write_image(png, pixels, colour=ColourSpec(primaries=Primaries.BT2020, transfer=Transfer.SMPTE2084))
    assert load_image(png).colour.spec.transfer == Transfer.SMPTE2084
    model = ["--weights", str(golden_path), "--device", "cpu", "--quiet", "--accept-out-of-range"]
    path = HdrPath(Transfer.SMPTE2084)
    want = restore_image(golden_model, pixels, accept_out_of_range=True, hdr=path)
    assert cli.main(["image", str(tif), str(tmp_path / "o.tif"), "--transfer", "pq", *model]) == 0
    assert cli.main(["image", str(png), str(tmp_path / "o.png"), *model]) == 0
    for out in (tmp_path / "o.tif", tmp_path / "o.png"):
        assert np.abs(read_image(out).astype(np.int64) - want.astype(np.int64)).max() <= 1, out.name
    assert load_image(tmp_path / "o.png").colour.spec.transfer == Transfer.SMPTE2084
    plain = restore_image(golden_model, pixels, accept_out_of_range=True)
    assert cli.main(["image", str(png), str(tmp_path / "p.png"), "--hdr", "passthrough", *model]) == 0
    assert np.abs(read_image(tmp_path / "p.png").astype(np.int64) - plain.astype(np.int64)).max() <= 1
    assert np.abs(plain.astype(np.int64) - want.astype(np.int64)).max() > 1000
    capsys.readouterr()
    # The path itself: the identity in place of the model gives every 16-bit value back.
    x = torch.from_numpy(pixels.astype(np.float32) / 65535).permute(2, 0, 1)[None]
    back = path.from_sdr(path.to_sdr(x), x)
    assert torch.equal(torch.round(back * 65535), torch.round(x * 65535))
    assert cli.main(["image", str(tif), str(tmp_path / "q.tif"), "--transfer", "pq", "--hdr-peak", "0", *model]) == 1
    assert "--hdr-peak 0" in capsys.readouterr().err
