"""Expected history counts of a Jolly-Seber population, the known truth of the open-model tests (a plain module, as
``refdata``, so test modules can share it)."""

from __future__ import annotations

import numpy as np

from hiddenpop.capture.events.open import history_matrix


def jolly_seber_cells(periods, first, survival, births, p):
    """Expected history counts of a Jolly-Seber population and its expected never-seen units by (entry, exit)."""
    entering = np.concatenate([[first], births])
    histories = history_matrix(periods)
    stay = np.zeros((periods, periods))
    for a in range(periods):
        for b in range(a, periods):
            leaves = 1 - survival[b] if b < periods - 1 else 1.0
            stay[a, b] = entering[a] * np.prod(survival[a:b]) * leaves
    cells = np.zeros(len(histories))
    for row, history in enumerate(histories):
        seen = np.flatnonzero(history)
        for a in range(seen[0] + 1):
            for b in range(seen[-1], periods):
                chance = np.prod([p[i] if history[i] else 1 - p[i] for i in range(a, b + 1)])
                cells[row] += stay[a, b] * chance
    unseen = {(a + 1, b + 1): stay[a, b] * np.prod(1 - p[a : b + 1]) for a in range(periods)
              for b in range(a, periods)}
    return cells, unseen
