"""Build the documentation site strictly (a warning is an error) into site/ and say how to open it.

    python docs/_site/build.py            # site/ (the first build computes the interactive page:
                                          # minutes; cached under build/site-cache/ after)
    python docs/_site/build.py --fast     # the coarse interactive page (seconds; what the tests use)
    python docs/_site/build.py --serve    # build, then serve on http://127.0.0.1:8000/

The same as ``mkdocs build --strict`` run in the repository root (mkdocs.yml and docs/_site/hooks.py
do the work); this script sets PYTHONPATH to this tree, so the API reference and the interactive
page are those of this checkout. The site needs no network to be read: open site/index.html.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "site"), help="output folder (default: site/)")
    p.add_argument(
        "--fast",
        action="store_true",
        help="the coarse interactive page (3 weights x 6 times), computed in seconds",
    )
    p.add_argument("--serve", action="store_true", help="serve the built site on --port")
    p.add_argument("--port", type=int, default=8000)
    args = p.parse_args(argv)
    env = dict(
        os.environ,
        NO_MKDOCS_2_WARNING="1",
        REFCFG_SITE_INTERACTIVE="fast" if args.fast else "full",
        PYTHONPATH=os.pathsep.join(
            [str(ROOT)] + [x for x in os.environ.get("PYTHONPATH", "").split(os.pathsep) if x]
        ),
    )
    out = Path(args.out).resolve()
    t0 = time.perf_counter()
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--clean",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(out),
        ],
        cwd=ROOT,
        env=env,
    )
    if res.returncode != 0:
        print(
            f"build_site: error: mkdocs build --strict failed (exit {res.returncode})",
            file=sys.stderr,
        )
        return 1
    print(f"site built in {time.perf_counter() - t0:.1f} s: open {out / 'index.html'}")
    if args.serve:
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
        with http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler) as httpd:
            print(f"serving on http://127.0.0.1:{args.port}/ (Ctrl-C stops)")
            try:
                httpd.serve_forever()
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
