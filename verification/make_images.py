"""Regenerate docs/images: the figure set of ``refcfg.plotting.figures.make_figures`` (PNG, 200 dpi)
on two-class-2d, class 0, seed 0, with the learned-errors figure of a default CFG training
(``refcfg.learn.train_cfg``, seed 0), and a screenshot of the interactive page taken by headless
Chromium (skipped, with a message, when no Chromium is installed).

    .venv/bin/python verification/make_images.py                 # everything into docs/images
    .venv/bin/python verification/make_images.py --out /tmp/img --steps 500
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        exe = shutil.which(name)
        if exe:
            return exe
    return None


def screenshot(page: Path, png: Path) -> bool:
    """The page at 1000 x 760 CSS pixels, device scale 2 (2000 x 1520 PNG); False without
    Chromium."""
    exe = _chromium()
    if exe is None:
        print("no Chromium installed: interactive.png not regenerated", file=sys.stderr)
        return False
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--window-size=1000,760",
        "--force-device-scale-factor=2",
        "--virtual-time-budget=3000",
        f"--screenshot={png}",
        page.as_uri(),
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return True


def shrink(png: Path) -> None:
    """Store a docs image as a 256-colour palette PNG (a third of the size; the figures use far
    fewer colours than that, so nothing visible changes)."""
    from PIL import Image

    with Image.open(png) as im:
        q = im.convert("RGB").quantize(
            colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
    q.save(png, optimize=True)


def main(argv=None) -> int:
    from threadpoolctl import threadpool_limits  # the MLP's small products: one BLAS thread

    with threadpool_limits(1, user_api="blas"):
        return _main(argv)


def _main(argv=None) -> int:
    from refcfg.learn.train import train_cfg
    from refcfg.paths import GMMPath
    from refcfg.plotting import figures, interactive
    from refcfg.problems import problem

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "images"), help="output directory")
    ap.add_argument("--steps", type=int, default=6000, help="training steps (default 6000)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = GMMPath(problem("two-class-2d"), "linear")
    t0 = time.perf_counter()
    res = train_cfg("two-class-2d", steps=args.steps, seed=args.seed, progress=False)
    print(f"trained {args.steps} steps in {res.seconds:.0f} s", file=sys.stderr)
    written = figures.make_figures(
        out, path, model=res.model, seed=args.seed, formats=("png",), progress=False
    )
    for name, files in written.items():
        shrink(Path(files[0]))
        print(f"{name}: {files[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        page = interactive.write_page(
            Path(tmp) / "interactive.html", path, y=0, seed=args.seed, problem="two-class-2d"
        )
        if screenshot(page, out / "interactive.png"):
            shrink(out / "interactive.png")
            print(f"interactive: {out / 'interactive.png'}")
    print(f"done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
