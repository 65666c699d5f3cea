"""The ddpm-pytorch audit at full size: `python verification/audits/audit_ddpm_pytorch.py` writes docs/audits/ddpm-pytorch.md,
.json and .png (`--fast`: the CI sizes, as `refcfg audit ddpm-pytorch --fast`). The audit itself is
`refcfg.audits`; see docs/audits.md."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _run import main

if __name__ == "__main__":
    sys.exit(main("ddpm-pytorch", sys.argv[1:]))
