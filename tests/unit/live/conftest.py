"""The live feed's unit tests: this folder (for live_test_support) on the import path."""

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for _path in (_HERE.parents[2], _HERE):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
