"""Reproduce result 'tree' of docs/verification.md at full size: print the table, write the figure.

Usage: .venv/bin/python verification/reproduce_tree.py [OUT_DIR]   (same as: refcfg reproduce tree --out OUT_DIR)
"""

import sys

from refcfg.commands.reproduce import run


class _Args:
    name = "tree"
    fast = False
    out = sys.argv[1] if len(sys.argv) > 1 else "verification/figures"
    seed = 0
    no_figure = False


if __name__ == "__main__":
    sys.exit(run(_Args()))
