"""What the engine tells the world while it works.

A terminal printer, a web page and the store all consume the same stream of events; the engine
knows none of them. Every event serializes to one JSON object with a ``type`` key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from startui.trajectory import Segment, Trajectory


@dataclass(frozen=True)
class SegmentStarted:
    """A new segment opens at ``index``; its text may still be empty."""

    trajectory_id: str
    index: int
    segment: Segment
    type: str = "segment_started"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "trajectory_id": self.trajectory_id, "index": self.index,
                "segment": self.segment.to_dict()}


@dataclass(frozen=True)
class TextDelta:
    """Text appended to the open segment at ``index`` (append-only)."""

    trajectory_id: str
    index: int
    text: str
    type: str = "text_delta"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "trajectory_id": self.trajectory_id, "index": self.index,
                "text": self.text}


@dataclass(frozen=True)
class SegmentFinished:
    """The segment at ``index`` is complete; ``segment`` is its final form (persist it now)."""

    trajectory_id: str
    index: int
    segment: Segment
    type: str = "segment_finished"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "trajectory_id": self.trajectory_id, "index": self.index,
                "segment": self.segment.to_dict()}


@dataclass(frozen=True)
class Notice:
    """Something a person should know that is not part of the text: a backend error, a kernel
    restart, a tool-call cap reached. ``level`` is "info", "warning" or "error"."""

    trajectory_id: str
    message: str
    level: str = "info"
    type: str = "notice"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "trajectory_id": self.trajectory_id, "level": self.level,
                "message": self.message}


@dataclass(frozen=True)
class TrajectoryFinished:
    """The run ended; ``trajectory.status`` says how (finished, cancelled, error)."""

    trajectory: Trajectory
    type: str = "trajectory_finished"

    @property
    def trajectory_id(self) -> str:
        return self.trajectory.id

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "trajectory_id": self.trajectory.id,
                "trajectory": self.trajectory.to_dict()}


@dataclass(frozen=True)
class TrajectoryStarted:
    """The run begins (or resumes) with ``trajectory`` as it is now."""

    trajectory: Trajectory
    type: str = "trajectory_started"

    @property
    def trajectory_id(self) -> str:
        return self.trajectory.id

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "trajectory_id": self.trajectory.id,
                "trajectory": self.trajectory.to_dict()}


Event = (TrajectoryStarted | SegmentStarted | TextDelta | SegmentFinished | Notice
         | TrajectoryFinished)
