"""Step labels: process supervision after PRM800K — each segment +1, 0 or −1, or unlabelled.

Labels belong to a revision: after an edit the old labels describe text that is gone, so they are
kept with their version and the new revision starts unlabelled. "First error" mode is the fast
path reviewers know from PRM labelling tools: pick the first wrong step and the steps before it
are labelled good, it is labelled wrong, and the rest are left unlabelled (PRM800K stops there).
"""

from __future__ import annotations

from typing import Any

from startui.review.users import require

STEP_LABELS = (1, 0, -1)


def first_error(n_segments: int, position: int) -> dict[int, int | None]:
    if not 0 <= position < n_segments:
        raise ValueError(f"no step {position}: the trajectory has {n_segments}")
    return {i: 1 if i < position else -1 if i == position else None for i in range(n_segments)}


def label_steps(store: Any, tid: str, reviewer: str, labels: dict[int, int | None], *,
                expected_version: int | None = None) -> int:
    """Set ``reviewer``'s labels ({position: +1 | 0 | −1 | None}); returns the version."""
    require(store, reviewer, "label")
    clean = {int(k): (None if v is None else int(v)) for k, v in labels.items()}
    return store.set_step_labels(tid, reviewer=reviewer, labels=clean,
                                 expected_version=expected_version)


def label_first_error(store: Any, tid: str, reviewer: str, position: int, *,
                      expected_version: int | None = None) -> dict[int, int | None]:
    n = store.trajectory_summary(tid).segments
    labels = first_error(n, position)
    label_steps(store, tid, reviewer, labels, expected_version=expected_version)
    return labels
