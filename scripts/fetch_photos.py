"""Gather the demo model's photographs (none are committed to the repository).

    python scripts/fetch_photos.py [--out runs/photos] [--cache ~/.cache/err-stream/photo-debs] [--max-side 2048]

Sources: Debian packages that ship photographs and scikit-image's bundled photographs.
The packages come from deb.debian.org through apt itself (``apt-get download`` with a private
sources list and state folder under ``--cache``, so the machine's own apt configuration is
untouched; no root needed) and are unpacked with ``dpkg-deb -x``. Each package is pinned to the
suite and version whose files are listed here: bookworm, plus the bullseye and trixie versions
that carry photographs the bookworm ones do not (GNOME 3.38's, Budgie's, Plasma 6's Mountain).

Photographs only: these packages also hold renders, drawings, paintings and abstract art,
which is not what a camera sees. The selection is a list (:data:`PACKAGES`), made by looking
at a contact sheet of every image of at least 900 px in every wallpaper/background package of
those suites (``apt-cache search wallpaper``/``background``); excluded as not camera pictures:
all of ukui-wallpapers, sway-backgrounds, xfdesktop4-data, gnome-backgrounds 43/48/51,
oxygen-wallpapers, phosh-wallpapers, breeze-wallpaper, desktop-base, most of
plasma-workspace-wallpapers and mate-backgrounds' abstract/desktop folders, Budgie's
ocean-waves (a woodblock print), waves/valley-midnight (drawings) and saturnian-profile
(a space probe image), GNOME 3.38's renders and its ColdWarm, Icetwigs and SeaSunset (photos,
but the package's copyright file does not name them or their licence), Enlightenment's
Dunes, Flat-*, Paper-Flower, Squiggle* and Sunset-Hills. Enlightenment's backgrounds are
Edje files: the largest JPEG inside each is the photograph (:func:`edje_largest_jpeg`).

Held out: ten of the photographs (``heldout`` below), plus scikit-image's coffee, chelsea and
rocket and matplotlib's grace_hopper, are written to ``OUT/heldout/`` and never trained on
(training reads only the images directly in ``OUT``); benchmarks/eval_demo.py measures on them.

Each photograph is downscaled to ``--max-side`` (Lanczos; downscaling also averages away the
originals' own noise and JPEG artefacts) and written as PNG; ``SOURCES.yaml`` records its
split, package, suite, version, path, copyright and licence as the package's copyright file
states them.
"""

from __future__ import annotations

import argparse
import fnmatch
import io
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from err_stream.train.datasets import SKIMAGE_SETS, _skimage_image  # noqa: E402

SUITES = ("bookworm", "bullseye", "trixie")


@dataclass(frozen=True)
class Package:
    suite: str
    version: str
    photos: tuple[str, ...]  # paths under the unpacked package root
    heldout: tuple[str, ...] = ()  # these are never trained on
    # Licence for files the package's copyright file does not state per file (a non-DEP-5 file).
    licence: tuple[str, str] | None = None
    copyright_paths: dict[str, tuple[str, str]] = field(default_factory=dict)


def _plasma(names: tuple[str, ...], size: str = "2560x1600.jpg") -> tuple[str, ...]:
    return tuple(f"usr/share/wallpapers/{n}/contents/images/{size}" for n in names)


PACKAGES: dict[str, Package] = {
    "mate-backgrounds": Package("bookworm", "1.26.0-1", tuple(
        f"usr/share/backgrounds/mate/nature/{n}.jpg"
        for n in ("Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops",
                  "Storm", "TwoWings", "Wood", "YellowFlower"))),
    "lomiri-wallpapers-16.04": Package("bookworm", "20.04.0-2", tuple(
        f"usr/share/backgrounds/{n}.jpg"
        for n in ("Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace", "Picture_1A_by_freespace",
                  "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi", "analogpattern_by_Peter_Nerlich",
                  "free_by_Peter_Nerlich", "friends_by_Aitzol_Berasategi", "greentock_by_Peter_Nerlich",
                  "life_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi", "seeding_by_Clements_Engelhardt",
                  "sunset_by_Aitzol_Berasategi"))),
    "lomiri-wallpapers-20.04": Package("bookworm", "20.04.0-2", (
        "usr/share/backgrounds/Infinite-Sea_by_Aury88.jpg",
        "usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg",
    )),
    "plasma-workspace-wallpapers": Package("bookworm", "4:5.27.5-2", _plasma(
        ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey", "Kite",
         "OneStandsOut", "Path", "summer_1am"))),
    # Plasma 6 added one photograph (the rest are the 5.27 ones or renders).
    "plasma-workspace-wallpapers@trixie": Package("trixie", "4:6.3.4-1", _plasma(("Mountain",), "5120x2880.png")),
    "enlightenment-data": Package("bookworm", "0.25.4-2", tuple(
        f"usr/share/enlightenment/data/backgrounds/{n}.edj"
        for n in ("Bamboo", "Foggy-Trees", "God-Rays", "Green-Maple", "Lichen-Branches", "Mountain", "Peaks",
                  "Spruce-Needles", "Sunset-Clouds", "White-Flower", "Yellow-Flower")), heldout=tuple(
        f"usr/share/enlightenment/data/backgrounds/{n}.edj" for n in ("Red-Maple", "Snow-Trees", "Sea-of-Lanterns"))),
    "budgie-backgrounds": Package("trixie", "3.0-1", tuple(
        f"usr/share/backgrounds/budgie/{n}.jpg"
        for n in ("abstract-spiral", "blue-periwinkle", "canyon-wren", "extreme-desert-hike",
                  "high-trestle-trail", "perched-osprey", "piazza-gae-aulenti", "tea-gardens")), heldout=tuple(
        f"usr/share/backgrounds/budgie/{n}.jpg"
        for n in ("beacon-street-sunset", "casa-mila", "lake-sherburne", "oakland-zoo-otters", "roman-colosseum",
                  "singaporean-cityscape"))),
    # GNOME 3.38's copyright file is not machine-readable: the two photographs it names.
    "gnome-backgrounds": Package("bullseye", "3.38.0-1", ("usr/share/backgrounds/gnome/Dark_Ivy.jpg",),
                                 heldout=("usr/share/backgrounds/gnome/Road.jpg",), copyright_paths={
        "usr/share/backgrounds/gnome/Dark_Ivy.jpg": ("2012 Garrett LeSage", "CC-BY-SA-3.0"),
        "usr/share/backgrounds/gnome/Road.jpg": ("2012 Garrett LeSage", "CC-BY-SA-3.0"),
    }),
}
# Mostly-black scientific images (deep field, retina) teach little about scenes.
SKIMAGE_PHOTOS = ("astronaut", "immunohistochemistry", "motorcycle_left", "motorcycle_right",
                  "camera", "coins", "clock", "grass", "gravel", "brick")
SKIMAGE_LICENCE = "see skimage/data/README.txt (public domain / CC0 / CC-BY per image)"
MATPLOTLIB_HELD_OUT = ("grace_hopper",)


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"fetch_photos: {' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    return r.stdout


def _apt_options(cache: Path) -> list[str]:
    """apt-get options for a private sources list and state under ``cache`` (the machine's own
    apt configuration and lists are neither read nor changed; the keys are the system's)."""
    apt = cache / "apt"
    (apt / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (apt / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    sources = apt / "sources.list"
    text = "".join(f"deb http://deb.debian.org/debian {s} main\n" for s in SUITES)
    if not sources.exists() or sources.read_text() != text:
        sources.write_text(text)
    return ["-o", f"Dir::Etc::sourcelist={sources}", "-o", "Dir::Etc::sourceparts=-", "-o", f"Dir::State::lists={apt / 'lists'}",
            "-o", f"Dir::Cache={apt / 'cache'}", "-o", "APT::Get::List-Cleanup=0"]


def fetch_package(name: str, version: str, cache: Path, updated: list[bool]) -> Path:
    """Download (once) and unpack ``name=version``; returns the unpacked root."""
    cache.mkdir(parents=True, exist_ok=True)
    quoted = version.replace(":", "%3a")
    debs = sorted(cache.glob(f"{name}_{quoted}_*.deb"))
    if not debs:
        if shutil.which("apt-get") is None:
            raise SystemExit(f"fetch_photos: apt-get is needed to download {name} (a Debian/Ubuntu system)")
        opts = _apt_options(cache)
        if not updated[0]:
            _run(["apt-get", *opts, "update"])
            updated[0] = True
        r = subprocess.run(["apt-get", *opts, "download", f"{name}={version}"], cwd=cache, capture_output=True, text=True)
        if r.returncode:
            policy = subprocess.run(["apt-cache", *opts, "policy", name], capture_output=True, text=True).stdout
            raise SystemExit(f"fetch_photos: cannot download {name}={version} ({r.stderr.strip()[-300:]}); versions on "
                             f"deb.debian.org now:\n{policy}\nupdate PACKAGES in scripts/fetch_photos.py")
        debs = sorted(cache.glob(f"{name}_{quoted}_*.deb"))
        if not debs:
            raise SystemExit(f"fetch_photos: apt-get download {name}={version} wrote no .deb in {cache}")
    root = cache / f"{name}_{quoted}-unpacked"
    if not root.is_dir():
        tmp = Path(tempfile.mkdtemp(dir=cache))
        _run(["dpkg-deb", "-x", str(debs[-1]), str(tmp)])
        tmp.rename(root)
    return root


def edje_largest_jpeg(path: Path) -> bytes:
    """The largest JPEG stored in an Edje (.edj) file: an Eet archive whose header is the magic,
    the entry count and the dictionary size, then per entry six big-endian uint32s (offset,
    stored size, data size, name offset, name size, flags)."""
    data = path.read_bytes()
    magic, count = struct.unpack(">II", data[:8])
    if magic != 0x1EE70F42:
        raise SystemExit(f"fetch_photos: {path} is not an Eet file (magic {magic:#x})")
    best: tuple[int, bytes] | None = None
    for i in range(count):
        offset, size, data_size, _, _, _ = struct.unpack(">6I", data[12 + 24 * i : 36 + 24 * i])
        blob = data[offset : offset + size]
        if size != data_size or blob[:3] != b"\xff\xd8\xff":  # compressed or not a JPEG
            continue
        with Image.open(io.BytesIO(blob)) as im:
            pixels = im.width * im.height
        if best is None or pixels > best[0]:
            best = (pixels, blob)
    if best is None:
        raise SystemExit(f"fetch_photos: no JPEG image in {path}")
    return best[1]


def dep5_licences(copyright_file: Path) -> list[tuple[list[str], str, str]]:
    """(file globs, copyright, licence) paragraphs of a machine-readable copyright file."""
    out = []
    if not copyright_file.is_file():
        return out
    for para in copyright_file.read_text(errors="replace").split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in para.splitlines():
            if line[:1] in (" ", "\t") and key:
                if key != "License":  # a licence's continuation lines are its text, not its name
                    fields[key] += " " + line.strip()
            elif ":" in line:
                key, _, val = line.partition(":")
                key = key.strip()
                fields[key] = val.strip()
        if "Files" in fields and "License" in fields:
            out.append((fields["Files"].split(), fields.get("Copyright", ""), fields["License"]))
    return out


def licence_of(rel: str, paragraphs: list[tuple[list[str], str, str]]) -> tuple[str, str]:
    """(copyright, licence) of ``rel`` (a path in the installed package). DEP-5 globs name paths
    in the upstream source, which the installed path only ends with (``nature/Aqua.jpg``) or
    which it lacks (lomiri's ``16.04/NAME.jpg``): a glob matches the path, its end, or (for a
    plain file name) the file name. The last matching paragraph wins."""
    best = ("", "unknown: see the package's copyright file")
    name = rel.rsplit("/", 1)[-1]
    for globs, holder, lic in paragraphs:
        for g in (g.strip("/") for g in globs):
            base = g.rsplit("/", 1)[-1]
            plain_name = not any(c in base for c in "*?[") and base == name
            if g == "*" or fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(rel, "*/" + g) or plain_name:
                best = (holder, lic)
    return best


def save(a: np.ndarray, dest: Path, max_side: int) -> tuple[int, int]:
    im = Image.fromarray(a)
    if max(im.size) > max_side:
        s = max_side / max(im.size)
        im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.Resampling.LANCZOS)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part.png")
    im.save(tmp)
    tmp.replace(dest)
    return im.width, im.height


def photo_name(package: str, rel: str) -> str:
    p = Path(rel)
    stem = p.parents[2].name if "contents" in p.parts else p.stem  # Plasma: the wallpaper's folder
    return f"{package}--{stem}"


def read_photo(path: Path) -> np.ndarray:
    if path.suffix == ".edj":
        with Image.open(io.BytesIO(edje_largest_jpeg(path))) as im:
            return np.asarray(im.convert("RGB"))
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "runs" / "photos"))
    p.add_argument("--cache", default=str(Path.home() / ".cache" / "err-stream" / "photo-debs"))
    p.add_argument("--max-side", type=int, default=2048)
    args = p.parse_args()
    out, cache = Path(args.out), Path(args.cache)
    out.mkdir(parents=True, exist_ok=True)
    sources = []
    updated = [False]
    for key, spec in PACKAGES.items():
        pkg = key.split("@")[0]
        root = fetch_package(pkg, spec.version, cache, updated)
        paras = dep5_licences(root / "usr" / "share" / "doc" / pkg / "copyright")
        for rel, split in [(r, "train") for r in spec.photos] + [(r, "heldout") for r in spec.heldout]:
            src = root / rel
            if not src.is_file():
                raise SystemExit(f"fetch_photos: {pkg} {spec.version} has no {rel} (PACKAGES in scripts/fetch_photos.py needs updating)")
            name = photo_name(pkg, rel)
            dest = (out / "heldout" if split == "heldout" else out) / f"{name}.png"
            w, h = save(read_photo(src), dest, args.max_side)
            holder, lic = spec.copyright_paths.get(rel) or licence_of(rel, paras)
            sources.append({"file": str(dest.relative_to(out)), "split": split, "size": [w, h], "package": pkg,
                            "suite": spec.suite, "version": spec.version, "path": "/" + rel, "copyright": holder, "licence": lic})
            print(f"  {dest.relative_to(out)} ({w}x{h}, {lic})", file=sys.stderr)
    import skimage

    for n in SKIMAGE_PHOTOS + SKIMAGE_SETS["heldout"]:
        split = "heldout" if n in SKIMAGE_SETS["heldout"] else "train"
        dest = (out / "heldout" if split == "heldout" else out) / f"skimage--{n}.png"
        w, h = save(_skimage_image(n), dest, args.max_side)
        sources.append({"file": str(dest.relative_to(out)), "split": split, "size": [w, h], "package": "scikit-image",
                        "version": skimage.__version__, "path": f"skimage.data.{n}", "copyright": "", "licence": SKIMAGE_LICENCE})
    try:
        import matplotlib
        from matplotlib import cbook

        for n in MATPLOTLIB_HELD_OUT:
            with Image.open(cbook.get_sample_data(f"{n}.jpg")) as im:
                a = np.asarray(im.convert("RGB"))
            dest = out / "heldout" / f"matplotlib--{n}.png"
            w, h = save(a, dest, args.max_side)
            sources.append({"file": str(dest.relative_to(out)), "split": "heldout", "size": [w, h], "package": "matplotlib",
                            "version": matplotlib.__version__, "path": f"matplotlib sample_data/{n}.jpg", "copyright": "",
                            "licence": "see matplotlib's LICENSE/LICENSE for the sample data"})
    except ImportError:
        print("fetch_photos: matplotlib not installed: its held-out photograph is left out", file=sys.stderr)
    (out / "SOURCES.yaml").write_text(yaml.safe_dump(sources, sort_keys=False, width=120))
    n_train = sum(s["split"] == "train" for s in sources)
    print(f"{n_train} training and {len(sources) - n_train} held-out photographs in {out} "
          "(SOURCES.yaml lists their sources and licences)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
