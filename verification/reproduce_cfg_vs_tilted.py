"""Reproduce result 'cfg-vs-tilted' of docs/verification.md at full size: print the table, write the figure.

Usage: python verification/reproduce_cfg_vs_tilted.py [OUT_DIR]   (the same as: refcfg reproduce cfg-vs-tilted --out OUT_DIR)
"""

import sys

from refcfg.cli import main

if __name__ == "__main__":
    sys.exit(
        main(
            [
                "reproduce",
                "cfg-vs-tilted",
                "--out",
                sys.argv[1] if len(sys.argv) > 1 else "verification/figures",
            ]
        )
    )
