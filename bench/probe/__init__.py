"""Re-runnable security and reliability probe of issue 13 (doc/security.md, "The probe").

Run each script from the repository root as root: `.venv/bin/python -m bench.probe.NAME`.
Importing this package first puts sources/ on the path, so the scripts import the product and
its test helpers as the test suite does.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "sources") not in sys.path:
    sys.path.insert(0, str(ROOT / "sources"))
