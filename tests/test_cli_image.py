"""`err-stream image`: files and folders, 8/16 bit, errors and exit codes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from err_stream.cli import main
from err_stream.colour import Matrix, Primaries, Range, Transfer
from err_stream.image import load_image, read_image, restore_image, write_image


@pytest.fixture()
def images(tmp_path):
    rng = np.random.default_rng(1)
    src = tmp_path / "in"
    src.mkdir()
    a8 = (rng.random((70, 90, 3)) * 255).astype(np.uint8)
    Image.fromarray(a8).save(src / "a.png")
    Image.fromarray(a8).save(src / "b.jpg", quality=95)
    a16 = (rng.random((60, 50, 3)) * 65535).astype(np.uint16)
    write_image(src / "c.tif", a16)
    write_image(src / "d.png", a16)
    (src / "notes.txt").write_text("ignored")
    return src


def test_folder_of_8_and_16_bit_images(images, tmp_path, golden_path, golden_model):
    out = tmp_path / "out"
    # The golden checkpoint's random weights leave [0, 1] far: accept and clamp (the guard is tested below).
    args = ["--weights", str(golden_path), "--device", "cpu", "--quiet", "--accept-out-of-range"]
    assert main(["image", str(images), str(out), *args]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.jpg", "c.tif", "d.png"]
    for name, dtype in (("a.png", np.uint8), ("c.tif", np.uint16), ("d.png", np.uint16)):
        got = read_image(out / name)
        assert got.dtype == dtype, name
        expected = restore_image(golden_model, read_image(images / name), accept_out_of_range=True)
        assert np.abs(got.astype(np.int64) - expected.astype(np.int64)).max() <= 1, name


def test_16_bit_png_round_trip_is_lossless(tmp_path):
    a = (np.random.default_rng(2).random((17, 23, 3)) * 65535).astype(np.uint16)
    write_image(tmp_path / "x.png", a)
    assert np.array_equal(read_image(tmp_path / "x.png"), a)


def test_image_colour_is_what_the_file_says_else_srgb(images, tmp_path):
    """Images follow the one rule for untagged input: RGB pictures are sRGB unless they say
    otherwise (a PNG's cICP chunk, as a PQ master's stills carry)."""
    import av

    for name in ("a.png", "b.jpg", "c.tif", "d.png"):
        colour = load_image(images / name).colour
        spec = colour.spec
        assert (spec.matrix, spec.range, spec.primaries, spec.transfer) == (Matrix.RGB, Range.FULL, Primaries.BT709, Transfer.IEC61966_2_1), name
        assert {g.field for g in colour.guesses} == {"primaries", "transfer"} and colour.warnings == [], name
    pixels = (np.random.default_rng(3).random((8, 12, 3)) * 65535).astype(np.uint16)
    frame = av.VideoFrame.from_ndarray(pixels, format="rgb48be")  # PyAV swaps to big-endian itself
    frame.color_primaries, frame.color_trc = Primaries.BT2020, Transfer.SMPTE2084  # FFmpeg's PNG encoder writes them as cICP
    pq = tmp_path / "pq.png"
    with av.open(str(pq), "w", format="image2") as out:
        st = out.add_stream("png", rate=1)
        st.width, st.height, st.pix_fmt = 12, 8, "rgb48be"
        for p in [*st.encode(frame), *st.encode(None)]:
            out.mux(p)
    loaded = load_image(pq)
    assert np.array_equal(loaded.pixels, pixels)
    assert (loaded.colour.spec.primaries, loaded.colour.spec.transfer) == (Primaries.BT2020, Transfer.SMPTE2084)
    assert loaded.colour.guesses == ()


def test_errors_exit_1_and_write_nothing(images, tmp_path, golden_path, capsys):
    w = ["--weights", str(golden_path), "--device", "cpu"]
    assert main(["image", str(tmp_path / "missing.png"), str(tmp_path / "o.png"), *w]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["image", str(images / "notes.txt"), str(tmp_path / "o.png"), *w]) == 1
    assert "not an image" in capsys.readouterr().err
    broken = tmp_path / "broken.png"
    broken.write_bytes((images / "a.png").read_bytes()[:60])
    assert main(["image", str(broken), str(tmp_path / "o.png"), *w]) == 1
    assert "cannot read" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()
    existing = tmp_path / "keep.png"
    existing.write_bytes(b"user data")
    assert main(["image", str(images / "a.png"), str(existing), *w]) == 1
    assert "--overwrite" in capsys.readouterr().err and existing.read_bytes() == b"user data"
    assert main(["image", str(images / "a.png"), str(tmp_path / "o.png"), "--weights", str(images / "a.png")]) == 1
    assert "checkpoint" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.part*")) and not list(tmp_path.glob(".*part*"))
