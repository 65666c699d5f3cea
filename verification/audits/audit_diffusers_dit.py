"""The diffusers-dit audit at full size: `python verification/audits/audit_diffusers_dit.py` writes docs/audits/diffusers-dit.md,
.json and .png (`--fast`: the CI sizes, as `refcfg audit diffusers-dit --fast`). The audit itself is
`refcfg.audits`; see docs/audits.md."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _run import main

if __name__ == "__main__":
    sys.exit(main("diffusers-dit", sys.argv[1:]))
