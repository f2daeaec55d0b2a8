"""Where the reference material lives (../shared beside the checkout).

Test modules import these names with ``from refdata import ...``: a plain module name that cannot clash the way
several ``conftest`` modules in different test folders do.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path:
    candidate = Path(os.environ.get("HIDDENPOP_SHARED", ROOT.parent / "shared"))
    if not (candidate / "fixtures").is_dir():
        raise RuntimeError(
            f"reference material not found at {candidate}; CI and developers have ../shared beside the checkout "
            "(set HIDDENPOP_SHARED to point elsewhere)"
        )
    return candidate


SHARED = _shared_dir()
FIXTURES = SHARED / "fixtures"
NSUM_DATA = SHARED / "nsum" / "data"
CAPTURE_DATA = SHARED / "capture" / "data"


def load_fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())
