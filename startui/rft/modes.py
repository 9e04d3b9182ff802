"""How a trajectory was made: the greedy baseline, Hint-infer, or plain sampling.

The paper's D_seed compares the two first on the same problem; D_START samples plainly from the
fine-tuned START-0. Selection, the digests and the analytics all classify trajectories by this
one function (:mod:`startui.rft.select` re-exports it).
"""

from __future__ import annotations

from startui.trajectory import Trajectory

GREEDY, HINTED, PLAIN = "greedy", "hinted", "plain"


def mode_of(traj: Trajectory) -> str:
    """How a trajectory was made: "greedy" (the baseline without hints), "hinted", or "plain"
    (sampled without hints, e.g. from START-0). Batches record it; older trajectories are
    classified by whether hints went in."""
    mode = traj.settings.get("mode")
    if isinstance(mode, str) and mode:
        return mode
    return HINTED if traj.hints else PLAIN
