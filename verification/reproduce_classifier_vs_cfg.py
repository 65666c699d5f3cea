"""Reproduce result 'classifier-vs-cfg' of docs/verification.md at full size: print the table, write the figure.

Usage: python verification/reproduce_classifier_vs_cfg.py [OUT_DIR]   (the same as: refcfg reproduce classifier-vs-cfg --out OUT_DIR)
"""

import sys

from refcfg.cli import main

if __name__ == "__main__":
    sys.exit(
        main(
            [
                "reproduce",
                "classifier-vs-cfg",
                "--out",
                sys.argv[1] if len(sys.argv) > 1 else "verification/figures",
            ]
        )
    )
