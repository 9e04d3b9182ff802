"""Trajectories with what people and scorers said about them: the rows Hint-RFT selects from.

A :class:`Record` is a trajectory, its version, its review status and its current rule score. The
selection, the export and the analytics read records only through these functions, a batch of
trajectories per read: keyset pages of a run (a long export holds no lock), or IN lists of ids;
each batch's segments come in one Core query (:func:`~startui.store.repository.load_many`).

People's status is decided by :mod:`startui.store.standing` with :mod:`startui.store.consensus`,
as for selection: an adjudication beats a campaign's consensus, which beats a single reviewer's
decision; an item whose campaign reviewers disagree and that nobody adjudicated yet is neither
accepted nor rejected (the rules decide).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import or_, tuple_
from sqlalchemy import select as sql
from sqlalchemy.orm import Session

from startui.store.models import RunRow, TrajectoryRow
from startui.store.repository import NotFoundError, load_many
from startui.store.standing import Standing, standings
from startui.trajectory import Trajectory


def resolve_runs(s: Session, names: Sequence[str]) -> list[str]:
    """Run ids for the names a user typed (a run's id or its name)."""
    if not names:
        raise ValueError("name at least one run (--run NAME); `python -m startui stats` and "
                         "the Runs list show them")
    rows = s.execute(sql(RunRow.id, RunRow.name).where(
        or_(RunRow.id.in_(names), RunRow.name.in_(names)))).all()
    ids: list[str] = []
    for name in names:
        match = [r.id for r in rows if r.id == name] or sorted(
            r.id for r in rows if r.name == name)
        if not match:
            known = s.scalars(sql(RunRow.id).order_by(RunRow.created_at.desc()).limit(10)).all()
            raise NotFoundError(f"unknown run {name!r}; recent runs: "
                                f"{', '.join(known) or 'none (generate one first)'}")
        ids += [m for m in match if m not in ids]
    return ids


@dataclass(kw_only=True)
class Record(Standing):
    """A trajectory with what people and scorers said about it: its :class:`Standing` (review
    status, how it came about, the current rule score, editors, step labels)."""

    trajectory: Trajectory
    version: int
    run_id: str | None
    created_at: Any = None  # the row's, for keyset paging


def attach(s: Session, rows: Sequence[Any]) -> list[Record]:
    """Records for already-read ``trajectories`` rows, in their order: the trajectories in bulk
    (:func:`~startui.store.repository.load_many`), with where each stands with people and the
    scorer (:func:`~startui.store.standing.standings`, what selection reads too)."""
    trajs = load_many(s, rows)
    return [Record(trajectory=traj, version=row.version, created_at=row.created_at,
                   run_id=row.run_id, **{f.name: getattr(st, f.name) for f in fields(Standing)})
            for row, traj, st in zip(rows, trajs, standings(s, rows), strict=True)]


def records_page(s: Session, run_ids: Sequence[str], *, status: str | None = None,
                 after: tuple[Any, str] | None = None, limit: int = 500) -> list[Record]:
    """One keyset page of the runs' records in (created_at, id) order, after ``after``."""
    T = TrajectoryRow
    q = sql(T.__table__).where(T.run_id.in_(list(run_ids)))
    if status is not None:
        q = q.where(T.status == status)
    if after is not None:
        q = q.where(tuple_(T.created_at, T.id) > tuple_(*after))
    rows = s.execute(q.order_by(T.created_at, T.id).limit(limit)).all()
    return attach(s, rows) if rows else []


def records_by_id(s: Session, ids: Sequence[str]) -> dict[str, Record]:
    T = TrajectoryRow
    rows = s.execute(sql(T.__table__).where(T.id.in_(list(ids)))).all()
    return {r.trajectory.id: r for r in attach(s, rows)}
