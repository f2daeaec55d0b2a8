"""Where the reference material lives: the datasets bundled with hiddenpop and the reference numbers in
tests/reference (what established tools print for them, each file naming the tool and version).

Test modules import these names with ``from refdata import ...``: a plain module name that cannot clash the way
several ``conftest`` modules in different test folders do. Nothing here depends on files outside the repository.
"""

from __future__ import annotations

import json
from pathlib import Path

from hiddenpop import datasets

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = Path(__file__).resolve().parent / "reference"
FIXTURES = REFERENCE
CAPTURE_DATA = datasets.path("rcapture_hare").parent
NSUM_DATA = datasets.path("networkreporting_example_survey").parent


def load_fixture(name: str) -> dict:
    return json.loads((REFERENCE / name).read_text())
