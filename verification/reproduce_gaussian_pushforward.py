"""Reproduce result 'gaussian-pushforward' of docs/verification.md at full size: print the table, write the figure.

Usage: python verification/reproduce_gaussian_pushforward.py [OUT_DIR]   (the same as: refcfg reproduce gaussian-pushforward --out OUT_DIR)
"""

import sys

from refcfg.cli import main

if __name__ == "__main__":
    sys.exit(
        main(
            [
                "reproduce",
                "gaussian-pushforward",
                "--out",
                sys.argv[1] if len(sys.argv) > 1 else "verification/figures",
            ]
        )
    )
