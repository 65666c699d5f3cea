"""The one progress bar of refcfg (tqdm on stderr), shared by training and figure writing."""

from __future__ import annotations

import sys

__all__ = ["progress_bar"]


def progress_bar(total: int, desc: str, progress=True, *, unit: str = "it", leave: bool = True):
    """A tqdm bar on stderr, or None. progress: True shows it when stderr is a terminal, "force"
    always, False (or None) never."""
    if progress == "force":
        enabled = True
    elif progress:
        enabled = sys.stderr.isatty()
    else:
        enabled = False
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=leave)
