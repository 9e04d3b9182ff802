"""Trajectory digests: the text-derived facts of a trajectory, computed once and kept beside it
(table ``trajectory_digests``), so that selection and the Dataset tab read 100,000 small JSON
documents instead of 2,000,000 segments.

The store only keeps them and knows when one is valid: a digest describes a trajectory at one
``version`` with ``n_segments`` segments, in one digest format (``schema``); any edit, rewind,
resume or re-save bumps the trajectory's version, after which its digest is *stale* and is
recomputed. What a digest holds (and the function that computes it from a trajectory) belongs
to Hint-RFT (:mod:`startui.rft.digest`): the store never interprets ``data``.

:class:`DigestRecord` is what selection and the dashboards read per trajectory: a
:class:`~startui.store.records.Record` without the text — the trajectory's row (status, problem,
run, version, tokens), the problem's kind and reference answer, where it stands with people and
the scorer (:class:`~startui.store.standing.Standing`), and its digest when one is valid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, and_, cast, delete, func, insert
from sqlalchemy import select as sql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from startui.bulk import loads
from startui.store.models import ProblemRow, RunRow, TrajectoryDigestRow, TrajectoryRow
from startui.store.repository import load_many
from startui.store.standing import Standing, standings
from startui.trajectory import Trajectory

D, T, P = TrajectoryDigestRow, TrajectoryRow, ProblemRow


def current(schema: int) -> Any:
    """The staleness rule, in SQL over ``trajectories`` joined with ``trajectory_digests``: a
    digest is valid iff it was made of this version of the trajectory, with this many segments,
    in the digest format the caller reads."""
    return and_(D.version == T.version, D.n_segments == T.n_segments, D.schema == schema)


@dataclass(slots=True)
class DigestRecord:
    """One trajectory as selection and the dashboards see it: no text (see the module)."""

    id: str
    problem_id: str
    run_id: str | None
    status: str
    version: int
    n_segments: int
    tokens: int
    kind: str  # the problem's
    reference: str | None  # the problem's reference answer, as it is now
    standing: Standing
    data: dict[str, Any] | None  # the digest; None: missing or stale (see current)


def digest_records(s: Session, run_ids: Sequence[str], *, schema: int) -> list[DigestRecord]:
    """Every trajectory of the runs, in (created_at, id) order, with its standing and its valid
    digest (``data`` None where it has none, or a stale one): one pass over each table."""
    runs = list(run_ids)
    if not runs:
        return []
    rows = s.connection().execute(  # Core: no ORM result machinery for 100,000 rows
        sql(T.id, T.version, T.review_status, T.problem_id, T.run_id, T.status, T.n_segments,
            T.tokens, P.kind, P.answer, cast(D.data, Text))  # decoded below: faster
        .join(P, P.id == T.problem_id)
        .outerjoin(D, and_(D.trajectory_id == T.id, current(schema)))
        .where(T.run_id.in_(runs))
        .order_by(T.created_at, T.id)).all()
    if not rows:
        return []
    # the runs are all of them (the Dataset tab's default): reading every trajectory's scores
    # and reviews is cheaper than an IN (SELECT ...) of 100,000 ids; either way is exact
    every_run = s.scalar(sql(func.count()).select_from(RunRow)) == len(set(runs))
    people = standings(s, rows, scope=True if every_run else sql(T.id).where(T.run_id.in_(runs)),
                       details=False)
    return [DigestRecord(tid, pid, run, status, version, n, tokens, kind, answer, st,
                         None if data is None else loads(data))
            for (tid, version, _, pid, run, status, n, tokens, kind, answer, data), st
            in zip(rows, people, strict=True)]


def load_texts(s: Session, ids: Sequence[str]) -> list[tuple[Trajectory, int, int]]:
    """(trajectory, version, n_segments) for ``ids`` (unknown ones left out), read together so
    a digest made of the text is stamped with the version it describes."""
    rows = s.execute(sql(T.__table__).where(T.id.in_(list(ids)))).all()
    return [(traj, r.version, r.n_segments) for r, traj in zip(rows, load_many(s, rows),
                                                               strict=True)]


def put(s: Session, digests: Sequence[tuple[str, int, int, int, dict[str, Any]]]) -> int:
    """Store ``(trajectory id, version, n_segments, schema, data)`` digests, replacing what the
    trajectories had (an upsert: two processes digesting the same trajectory at once both
    succeed); those of trajectories deleted meanwhile are dropped. Returns how many were
    stored. Never wrong, only stale: a trajectory that changed since its text was read has a
    newer version than the digest, which the next read recomputes."""
    dialect = s.get_bind().dialect.name
    stored = 0
    for i in range(0, len(digests), 500):
        chunk = digests[i:i + 500]
        alive = set(s.scalars(sql(T.id).where(T.id.in_([d[0] for d in chunk]))))
        values = [{"trajectory_id": tid, "version": v, "n_segments": n, "schema": schema,
                   "data": data} for tid, v, n, schema, data in chunk if tid in alive]
        if not values:
            continue
        if dialect in ("sqlite", "postgresql"):
            ins = (sqlite_insert if dialect == "sqlite" else pg_insert)(D)
            s.execute(ins.on_conflict_do_update(index_elements=[D.trajectory_id], set_={
                c: ins.excluded[c] for c in ("version", "n_segments", "schema", "data")}),
                values)
        else:  # another database: replace in two steps
            s.execute(delete(D).where(D.trajectory_id.in_([v["trajectory_id"] for v in values])))
            s.execute(insert(D), values)
        stored += len(values)
    return stored
