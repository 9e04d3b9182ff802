"""What the engine tells the world while it works.

A terminal printer, a web page and the store all consume the same stream of events; the engine
knows none of them. Every event serializes to one JSON object with a ``type`` key.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from startui.trajectory import Segment, Trajectory


class _Serial:
    """One JSON object per event: its type, its trajectory, then its fields (a segment or a
    trajectory as their own dicts)."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type,  # type: ignore[attr-defined]
                               "trajectory_id": self.trajectory_id}  # type: ignore[attr-defined]
        for f in fields(self):  # type: ignore[arg-type]
            if f.name not in out:
                value = getattr(self, f.name)
                out[f.name] = value.to_dict() if hasattr(value, "to_dict") else value
        return out



@dataclass(frozen=True)
class SegmentStarted(_Serial):
    """A new segment opens at ``index``; its text may still be empty."""

    trajectory_id: str
    index: int
    segment: Segment
    type: str = "segment_started"



@dataclass(frozen=True)
class TextDelta(_Serial):
    """Text appended to the open segment at ``index`` (append-only)."""

    trajectory_id: str
    index: int
    text: str
    type: str = "text_delta"



@dataclass(frozen=True)
class SegmentFinished(_Serial):
    """The segment at ``index`` is complete; ``segment`` is its final form (persist it now)."""

    trajectory_id: str
    index: int
    segment: Segment
    type: str = "segment_finished"



@dataclass(frozen=True)
class Notice(_Serial):
    """Something a person should know that is not part of the text: a backend error, a kernel
    restart, a tool-call cap reached. ``level`` is "info", "warning" or "error"."""

    trajectory_id: str
    message: str
    level: str = "info"
    type: str = "notice"



@dataclass(frozen=True)
class TrajectoryFinished(_Serial):
    """The run ended; ``trajectory.status`` says how (finished, cancelled, error)."""

    trajectory: Trajectory
    type: str = "trajectory_finished"

    @property
    def trajectory_id(self) -> str:
        return self.trajectory.id



@dataclass(frozen=True)
class TrajectoryStarted(_Serial):
    """The run begins (or resumes) with ``trajectory`` as it is now."""

    trajectory: Trajectory
    type: str = "trajectory_started"

    @property
    def trajectory_id(self) -> str:
        return self.trajectory.id



Event = (TrajectoryStarted | SegmentStarted | TextDelta | SegmentFinished | Notice
         | TrajectoryFinished)
