"""The k-diffusion audit at full size: `python verification/audits/audit_k_diffusion.py` writes docs/audits/k-diffusion.md,
.json and .png (`--fast`: the CI sizes, as `refcfg audit k-diffusion --fast`). The audit itself is
`refcfg.audits`; see docs/audits.md."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _run import main

if __name__ == "__main__":
    sys.exit(main("k-diffusion", sys.argv[1:]))
