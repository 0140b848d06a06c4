"""Gather the demo model's training photographs (none are committed to the repository).

    python scripts/fetch_photos.py [--out runs/photos] [--cache ~/.cache/err-stream/photo-debs] [--max-side 1600]

Sources: Debian packages that ship photographs (fetched with ``apt-get download``, unpacked
with ``dpkg-deb -x``, no root needed) and scikit-image's bundled photographs. Only the files
listed in :data:`PHOTOS` are used: these packages also hold drawn artwork, which is not what
a camera sees. Each photograph is downscaled to ``--max-side`` (faster loading; downscaling
also averages away the originals' own noise and JPEG artefacts) and written as PNG, and
``SOURCES.yaml`` records its package, version, path, copyright and licence as the package's
DEP-5 copyright file states them. matplotlib's sample images are never used: they are the
held-out evaluation set (benchmarks/eval_demo.py).
"""

from __future__ import annotations

import argparse
import fnmatch
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from err_stream.train.datasets import _skimage_image  # noqa: E402

# package -> photographs inside it (paths under the unpacked package root).
PHOTOS: dict[str, list[str]] = {
    "mate-backgrounds": [
        f"usr/share/backgrounds/mate/nature/{n}.jpg"
        for n in ("Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops",
                  "Storm", "TwoWings", "Wood", "YellowFlower")
    ],
    "lomiri-wallpapers-16.04": [
        f"usr/share/backgrounds/{n}.jpg"
        for n in ("Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace", "Picture_1A_by_freespace",
                  "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi", "analogpattern_by_Peter_Nerlich",
                  "free_by_Peter_Nerlich", "friends_by_Aitzol_Berasategi", "greentock_by_Peter_Nerlich",
                  "life_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi", "seeding_by_Clements_Engelhardt",
                  "sunset_by_Aitzol_Berasategi")
    ],
    "lomiri-wallpapers-20.04": [
        "usr/share/backgrounds/Infinite-Sea_by_Aury88.jpg",
        "usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg",
    ],
    "plasma-workspace-wallpapers": [
        f"usr/share/wallpapers/{n}/contents/images/{s}"
        for n, s in (("BytheWater", "2560x1600.jpg"), ("ColdRipple", "2560x1600.jpg"), ("ColorfulCups", "2560x1600.jpg"),
                     ("DarkestHour", "2560x1600.jpg"), ("EveningGlow", "2560x1600.jpg"), ("FallenLeaf", "2560x1600.jpg"),
                     ("Grey", "2560x1600.jpg"), ("Kite", "2560x1600.jpg"), ("OneStandsOut", "2560x1600.jpg"),
                     ("Path", "2560x1600.jpg"), ("summer_1am", "2560x1600.jpg"))
    ],
}
# Mostly-black scientific images (deep field, retina) teach little about scenes.
SKIMAGE_PHOTOS = ("astronaut", "immunohistochemistry", "motorcycle_left", "motorcycle_right",
                  "camera", "coins", "clock", "grass", "gravel", "brick")
SKIMAGE_LICENCE = "see skimage/data/README.txt (public domain / CC0 / CC-BY per image)"


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"fetch_photos: {' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    return r.stdout


def fetch_package(name: str, cache: Path) -> tuple[Path, str]:
    """Download (once) and unpack a .deb; returns (unpacked root, version)."""
    cache.mkdir(parents=True, exist_ok=True)
    debs = sorted(cache.glob(f"{name}_*.deb"))
    if not debs:
        if shutil.which("apt-get") is None:
            raise SystemExit(f"fetch_photos: apt-get is needed to download {name} (a Debian/Ubuntu system)")
        _run(["apt-get", "download", name], cwd=cache)
        debs = sorted(cache.glob(f"{name}_*.deb"))
        if not debs:
            raise SystemExit(f"fetch_photos: apt-get download {name} wrote no .deb in {cache}")
    deb = debs[-1]
    version = _run(["dpkg-deb", "-f", str(deb), "Version"]).strip()
    root = cache / f"{name}-unpacked"
    if not root.is_dir():
        tmp = Path(tempfile.mkdtemp(dir=cache))
        _run(["dpkg-deb", "-x", str(deb), str(tmp)])
        tmp.rename(root)
    return root, version


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
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, _, val = line.partition(":")
                fields[key.strip()] = val.strip()
        if "Files" in fields and "License" in fields:
            out.append((fields["Files"].split(), fields.get("Copyright", ""), fields["License"].split("\n")[0]))
    return out


def licence_of(path: str, paragraphs: list[tuple[list[str], str, str]]) -> tuple[str, str]:
    best = ("", "unknown: see the package's copyright file")
    for globs, holder, lic in paragraphs:  # DEP-5: the last matching paragraph wins
        if any(fnmatch.fnmatch(path, g) or path.endswith("/" + g.lstrip("*/")) or fnmatch.fnmatch(path, "*/" + g) for g in globs):
            best = (holder, lic)
    return best


def save(a: np.ndarray, dest: Path, max_side: int) -> tuple[int, int]:
    im = Image.fromarray(a)
    if max(im.size) > max_side:
        s = max_side / max(im.size)
        im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.Resampling.LANCZOS)
    im.save(dest)
    return im.width, im.height


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "runs" / "photos"))
    p.add_argument("--cache", default=str(Path.home() / ".cache" / "err-stream" / "photo-debs"))
    p.add_argument("--max-side", type=int, default=1600)
    args = p.parse_args()
    out, cache = Path(args.out), Path(args.cache)
    out.mkdir(parents=True, exist_ok=True)
    sources = []
    for pkg, files in PHOTOS.items():
        root, version = fetch_package(pkg, cache)
        paras = dep5_licences(root / "usr" / "share" / "doc" / pkg / "copyright")
        for rel in files:
            src = root / rel
            if not src.is_file():
                raise SystemExit(f"fetch_photos: {pkg} {version} has no {rel} (the list in scripts/fetch_photos.py needs updating)")
            name = f"{pkg}--{Path(rel).parent.name if 'contents' in rel else ''}{Path(rel).stem}".replace("--contents", "--")
            if "wallpapers/" in rel and "contents/images" in rel:
                name = f"{pkg}--{Path(rel).parents[2].name}"
            with Image.open(src) as im:
                a = np.asarray(im.convert("RGB"))
            w, h = save(a, out / f"{name}.png", args.max_side)
            holder, lic = licence_of(rel.split("/")[-1], paras) if pkg.startswith("lomiri") else licence_of(rel, paras)
            if pkg.startswith("lomiri"):  # its copyright file names files as 16.04/NAME or 20.04/NAME
                for globs, hh, ll in paras:
                    if any(g.endswith("/" + Path(rel).name) for g in globs):
                        holder, lic = hh, ll
            sources.append({"file": f"{name}.png", "size": [w, h], "package": pkg, "version": version, "path": "/" + rel,
                            "copyright": holder, "licence": lic})
    import skimage

    for n in SKIMAGE_PHOTOS:
        w, h = save(_skimage_image(n), out / f"skimage--{n}.png", args.max_side)
        sources.append({"file": f"skimage--{n}.png", "size": [w, h], "package": "scikit-image", "version": skimage.__version__,
                        "path": f"skimage.data.{n}", "copyright": "", "licence": SKIMAGE_LICENCE})
    (out / "SOURCES.yaml").write_text(yaml.safe_dump(sources, sort_keys=False, width=120))
    print(f"{len(sources)} photographs in {out} (SOURCES.yaml lists their sources and licences)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
