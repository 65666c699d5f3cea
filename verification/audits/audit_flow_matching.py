"""The flow-matching audit at full size: `python verification/audits/audit_flow_matching.py` writes docs/audits/flow-matching.md,
.json and .png (`--fast`: the CI sizes, as `refcfg audit flow-matching --fast`). The audit itself is
`refcfg.audits`; see docs/audits.md."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _run import main

if __name__ == "__main__":
    sys.exit(main("flow-matching", sys.argv[1:]))
