"""Repository functions of the trajectory store: each takes an open SQLAlchemy ``Session`` inside a
transaction the caller owns (``startui.store.Store`` runs writes on its single writer thread and
reads on any thread), and speaks the app's types (``Problem``, ``Trajectory``, ``Segment``).

Kept apart from ``Store`` so that the SQL is testable and reusable (a batch job may compose several
of these in one transaction), and so neither module grows past a screenful of concerns.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Text, cast, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.orm import Session

from startui.store.models import (
    ArtifactRow,
    ProblemRow,
    RunRow,
    SegmentRow,
    TrajectoryRow,
    utcnow,
)
from startui.trajectory import Problem, Segment, Trajectory


class StoreError(RuntimeError):
    """Something about the database the user can act on (bad URL, unknown revision, ...)."""


class NotFoundError(StoreError, LookupError):
    """No row with that id."""


class ConflictError(StoreError):
    """Someone else changed the trajectory since it was loaded; reload and redo the edit."""

    def __init__(self, message: str, *, current_version: int | None = None) -> None:
        super().__init__(message)
        self.current_version = current_version


# --- conversions -------------------------------------------------------------------------------

# Segment meta keys whose lists move to the artifacts table, with the MIME type they hold.
ARTIFACT_KEYS = {"images": "image/png", "plotly": "application/vnd.plotly.v1+json"}
# Settings keys that describe one trajectory, not the run it belongs to.
PER_TRAJECTORY_SETTINGS = frozenset({"parent_id", "branch_point", "run_id", "run_name", "mode",
                                     "sample", "visitor"})


def parse_ts(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(value)
        except (TypeError, ValueError) as e:
            raise ValueError(f"created_at {value!r} is not an ISO 8601 timestamp") from e
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)


def format_ts(dt: datetime | None) -> str | None:
    """The inverse of ``parse_ts`` for what ``trajectory._now()`` writes (UTC, seconds)."""
    if dt is None:
        return None
    dt = dt.astimezone(UTC)
    return dt.isoformat(timespec="seconds" if dt.microsecond == 0 else "microseconds")


_ATOMS = frozenset({str, int, float, bool, type(None)})


def _plain(v: Any, depth: int = 0) -> bool:
    if type(v) in _ATOMS or isinstance(v, str | int | float | bool):
        return True
    if depth > 20:
        return False
    if isinstance(v, dict):
        for k, x in v.items():
            if not (isinstance(k, str) and (type(x) in _ATOMS or _plain(x, depth + 1))):
                return False
        return True
    if isinstance(v, list):
        for x in v:
            if not (type(x) in _ATOMS or _plain(x, depth + 1)):
                return False
        return True
    return False


def jsonable(value: Any) -> Any:
    """Make ``value`` storable in a JSON column; objects the engine may leave in settings (a
    policy object, a Path, a tuple) become JSON's nearest equivalent rather than failing the
    whole write."""
    if _plain(value):
        return value
    return json.loads(json.dumps(value, default=str))


def content_hash(text: str, n: int = 16) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


def split_meta(meta: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, int, str, str]]]:
    """Segment meta → (meta kept inline, artifacts as (key, ordinal, mime, data)).

    Only non-empty lists move out (an empty list stays inline so it round-trips); images must be
    strings (base64 PNG), plotly entries are stored as JSON text.
    """
    inline = dict(meta)
    arts: list[tuple[str, int, str, str]] = []
    for key, mime in ARTIFACT_KEYS.items():
        items = meta.get(key)
        if not isinstance(items, list) or not items:
            continue
        if key == "images" and not all(isinstance(x, str) for x in items):
            continue
        del inline[key]
        for i, item in enumerate(items):
            arts.append((key, i, mime, item if key == "images" else json.dumps(item)))
    return jsonable(inline), arts


def join_meta(meta: dict[str, Any] | None, arts: Iterable[tuple[str, int, str]]) -> dict[str, Any]:
    """Inverse of :func:`split_meta`: ``arts`` are (key, ordinal, data) rows."""
    out = dict(meta or {})
    for key, _, data in sorted(arts, key=lambda a: (a[0], a[1])):
        out.setdefault(key, []).append(data if key == "images" else json.loads(data))
    return out


def derived(segments: Sequence[Segment]) -> dict[str, Any]:
    """Counters and final answer, computed exactly as :class:`Trajectory` does."""
    t = Trajectory(problem=Problem(question=""), prompt="", segments=list(segments))
    return {"tool_calls": t.tool_calls, "hints": t.hints, "n_segments": len(segments),
            "answer": t.answer, "human_hints": t.human_hints, "ends_in_error": t.ends_in_error,
            "length": sum(len(s.text) for s in segments),
            # any change of the segments makes the rule score stale until it is re-scored
            "verdict": None}


def shuffle_key(trajectory_id: str) -> int:
    """A stable pseudo-random key per trajectory: the queue's "shuffled" order permutes it with a
    seed (31 bits, so seed arithmetic stays inside 64-bit integers on every database)."""
    return int(hashlib.sha1(trajectory_id.encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def problem_identity(p: Problem) -> tuple[str, str, str]:
    """(id, source, external_id) of a problem: an imported one carries ``meta["source"]`` and
    ``meta["external_id"]``; an ad-hoc one (typed into the UI) is "local" and, without an id,
    keyed by a hash of its question so asking the same thing twice is one problem."""
    source = str(p.meta.get("source") or "local")
    ext = p.meta.get("external_id")
    ext = str(ext) if ext not in (None, "") else (p.id or content_hash(p.question))
    return (p.id or f"{source}:{ext}", source, ext)


def problem_from_row(r: Any) -> Problem:
    return Problem(question=r.question, answer=r.answer, kind=r.kind, tests=r.tests, id=r.id,
                   meta=dict(r.meta or {}))


# --- problems ----------------------------------------------------------------------------------

def upsert_problems(s: Session, problems: Sequence[Problem]) -> list[tuple[str, str]]:
    """Insert or update by id, else by (source, external_id). Returns (id, action) per problem,
    action being "inserted", "updated" or "unchanged" (which makes re-imports reportable)."""
    idents = [problem_identity(p) for p in problems]
    by_id: dict[str, ProblemRow] = {}
    by_ext: dict[tuple[str, str], ProblemRow] = {}
    ids, pairs = sorted({i[0] for i in idents}), sorted({i[1:] for i in idents})
    for k in range(0, max(len(ids), len(pairs)), 400):  # bounded IN lists
        for r in s.scalars(select(ProblemRow).where(or_(
                ProblemRow.id.in_(ids[k:k + 400]),
                tuple_(ProblemRow.source, ProblemRow.external_id).in_(pairs[k:k + 400])))):
            by_id[r.id] = by_ext[(r.source, r.external_id)] = r
    out = []
    now = utcnow()
    for p, (pid, source, ext) in zip(problems, idents, strict=True):
        row = by_id.get(pid) or by_ext.get((source, ext))
        values = {"question": p.question, "answer": None if p.answer is None else str(p.answer),
                  "kind": p.kind, "tests": jsonable(p.tests), "meta": jsonable(dict(p.meta))}
        if row is None:
            row = ProblemRow(id=pid, source=source, external_id=ext, created_at=now,
                             updated_at=now, **values)
            s.add(row)
            by_id[pid] = by_ext[(source, ext)] = row
            out.append((pid, "inserted"))
        elif any(getattr(row, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(row, k, v)
            row.updated_at = now
            out.append((row.id, "updated"))
        else:
            out.append((row.id, "unchanged"))
    s.flush()
    return out


def get_problem(s: Session, problem_id: str) -> Problem:
    row = s.get(ProblemRow, problem_id)
    if row is None:
        raise NotFoundError(f"no problem {problem_id!r} in the store")
    return problem_from_row(row)


def get_problems(s: Session, ids: Sequence[str]) -> list[Problem]:
    """Problems by id, in that order (unknown ids are left out)."""
    found: dict[str, Problem] = {}
    for i in range(0, len(ids), 500):
        for r in s.scalars(select(ProblemRow).where(ProblemRow.id.in_(list(ids[i:i + 500])))):
            found[r.id] = problem_from_row(r)
    return [found[i] for i in ids if i in found]


def list_problems(s: Session, *, kind: str | None = None, source: str | None = None,
                  limit: int | None = 100, offset: int = 0) -> list[Problem]:
    q = select(ProblemRow).order_by(ProblemRow.source, ProblemRow.created_at, ProblemRow.id)
    if kind:
        q = q.where(ProblemRow.kind == kind)
    if source:
        q = q.where(ProblemRow.source == source)
    return [problem_from_row(r) for r in s.scalars(q.limit(limit).offset(offset))]


# --- runs --------------------------------------------------------------------------------------

def _pick(settings: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if settings.get(k) not in (None, "", {}):
            return settings[k]
    return None


def ensure_run(s: Session, settings: dict[str, Any]) -> str | None:
    """The run a trajectory belongs to: ``settings["run_id"]`` if the caller named one, else one
    shared by every trajectory made with identical settings. None for empty settings."""
    core = {k: v for k, v in settings.items() if k not in PER_TRAJECTORY_SETTINGS}
    if not core and not settings.get("run_id"):
        return None
    core = jsonable(core)
    run_id = str(settings.get("run_id") or "run-" + content_hash(json.dumps(core, sort_keys=True)))
    if s.get(RunRow, run_id) is not None:
        return run_id
    backend = _pick(core, "backend")
    model = _pick(core, "model", "model_path")
    if isinstance(backend, dict):
        model = model or _pick(backend, "model", "model_path")
        backend = _pick(backend, "name", "kind", "type")
    sampling = core.get("sampling")
    if not isinstance(sampling, dict):  # the engine keeps them in settings["engine"]
        flat = {**core, **(core.get("engine") if isinstance(core.get("engine"), dict) else {})}
        sampling = {k: flat[k] for k in ("temperature", "top_p", "top_k", "max_tokens", "seed")
                    if k in flat}
    s.add(RunRow(id=run_id, name=settings.get("run_name") or settings.get("run_id"),
                 backend=None if backend is None else str(backend)[:100],
                 model=None if model is None else str(model)[:500], sampling=sampling,
                 hint_policy=_pick(core, "hint_policy", "hints", "policy"), settings=core))
    s.flush()
    return run_id


def list_runs(s: Session) -> list[dict[str, Any]]:
    counts = dict(s.execute(select(TrajectoryRow.run_id, func.count()).group_by(
        TrajectoryRow.run_id)).all())
    return [{"id": r.id, "name": r.name, "backend": r.backend, "model": r.model,
             "sampling": r.sampling, "hint_policy": r.hint_policy, "settings": r.settings,
             "created_at": format_ts(r.created_at), "trajectories": counts.get(r.id, 0)}
            for r in s.scalars(select(RunRow).order_by(RunRow.created_at.desc()))]


# --- trajectories: writing ---------------------------------------------------------------------

def _segment_values(seg: Segment) -> tuple[dict[str, Any], list[tuple[str, int, str, str]]]:
    meta, arts = split_meta(seg.meta)
    return ({"kind": seg.kind, "source": seg.source, "text": seg.text, "meta": meta,
             "closed": seg.closed}, arts)


def _insert_artifacts(s: Session, tid: str, segment_id: int,
                      arts: list[tuple[str, int, str, str]], now: datetime) -> None:
    if arts:
        s.execute(insert(ArtifactRow), [
            {"segment_id": segment_id, "trajectory_id": tid, "key": k, "ordinal": i, "mime": m,
             "data": d, "created_at": now} for k, i, m, d in arts])


def sync_segments(s: Session, tid: str, segments: Sequence[Segment], *, start: int = 0,
                  truncate: bool = True) -> bool:
    """Make positions ``start..`` equal ``segments`` (and, with ``truncate``, delete positions
    after them). Unchanged rows are not rewritten, so re-saving a finished trajectory costs one
    read. Returns whether anything changed."""
    now = utcnow()
    end = start + len(segments)
    existing = {r.position: r for r in s.execute(
        select(SegmentRow.id, SegmentRow.position, SegmentRow.kind, SegmentRow.source,
               SegmentRow.text, SegmentRow.meta, SegmentRow.closed)
        .where(SegmentRow.trajectory_id == tid, SegmentRow.position >= start,
               SegmentRow.position < end))}
    arts_by_seg: dict[int, list[tuple[str, int, str, str]]] = {}
    if existing:
        for a in s.execute(select(ArtifactRow.segment_id, ArtifactRow.key, ArtifactRow.ordinal,
                                  ArtifactRow.mime, ArtifactRow.data)
                           .where(ArtifactRow.segment_id.in_([r.id for r in existing.values()]))
                           .order_by(ArtifactRow.key, ArtifactRow.ordinal)):
            arts_by_seg.setdefault(a.segment_id, []).append((a.key, a.ordinal, a.mime, a.data))
    changed = False
    fresh: list[dict[str, Any]] = []
    for pos, seg in enumerate(segments, start):
        values, arts = _segment_values(seg)
        row = existing.get(pos)
        if row is None:
            if arts:  # needs the new row's id for its artifacts
                seg_id = s.execute(insert(SegmentRow).values(
                    trajectory_id=tid, position=pos, created_at=now, **values)
                    .returning(SegmentRow.id)).scalar_one()
                _insert_artifacts(s, tid, seg_id, arts, now)
            else:
                fresh.append({"trajectory_id": tid, "position": pos, "created_at": now, **values})
            changed = True
            continue
        if any(getattr(row, k) != v for k, v in values.items()):
            s.execute(update(SegmentRow).where(SegmentRow.id == row.id).values(**values))
            changed = True
        if arts_by_seg.get(row.id, []) != arts:
            s.execute(delete(ArtifactRow).where(ArtifactRow.segment_id == row.id))
            _insert_artifacts(s, tid, row.id, arts, now)
            changed = True
    if fresh:
        s.execute(insert(SegmentRow.__table__), fresh)
    if truncate:
        gone = s.execute(delete(SegmentRow).where(SegmentRow.trajectory_id == tid,
                                                  SegmentRow.position >= end))
        changed = changed or bool(gone.rowcount)
    return changed


def json_copy(value: Any) -> Any:
    """A deep copy of a decoded JSON value (dicts, lists and scalars only): ``copy.deepcopy``
    without its memo, several times faster."""
    if type(value) is dict:
        return {k: json_copy(v) for k, v in value.items()}
    if type(value) is list:
        return [json_copy(v) for v in value]
    return value


class MetaDecoder:
    """Segment meta from its stored JSON text, each distinct text decoded once (most segments
    share a handful: ``{}``, a hint's category, ...); every call returns a fresh copy."""

    def __init__(self, limit: int = 4096) -> None:
        # raw text -> (decoded, whether every value is a scalar: then a shallow copy is enough)
        self.cache: dict[str, tuple[dict[str, Any], bool]] = {}
        self.limit = limit

    def __call__(self, raw: str | None) -> dict[str, Any]:
        if raw is None:
            return {}
        hit = self.cache.get(raw)
        if hit is None:
            meta = json.loads(raw) or {}
            if len(self.cache) >= self.limit:
                return meta
            hit = self.cache[raw] = (meta, not any(type(v) in (dict, list)
                                                   for v in meta.values()))
        return dict(hit[0]) if hit[1] else json_copy(hit[0])


def load_segments(s: Session, tids: Sequence[str]) -> dict[str, list[Segment]]:
    """Segments (with artifacts back in their meta) of several trajectories in two Core queries:
    rows as tuples, meta read as JSON text and decoded by :class:`MetaDecoder`."""
    conn = s.connection()
    arts: dict[int, list[tuple[str, int, str]]] = {}
    for seg_id, key, ordinal, data in conn.execute(
            select(ArtifactRow.segment_id, ArtifactRow.key, ArtifactRow.ordinal,
                   ArtifactRow.data).where(ArtifactRow.trajectory_id.in_(tids))):
        arts.setdefault(seg_id, []).append((key, ordinal, data))
    out: dict[str, list[Segment]] = {t: [] for t in tids}
    decode = MetaDecoder()
    S = SegmentRow
    for seg_id, tid, kind, source, text, raw, closed in conn.execute(
            select(S.id, S.trajectory_id, S.kind, S.source, S.text, cast(S.meta, Text), S.closed)
            .where(S.trajectory_id.in_(tids)).order_by(S.trajectory_id, S.position)).all():
        meta = decode(raw)
        if seg_id in arts:
            meta = join_meta(meta, arts[seg_id])
        out[tid].append(Segment(kind, text, source, meta, bool(closed)))
    return out


def _refresh(s: Session, tid: str, **extra: Any) -> None:
    """Recompute a trajectory's counters and answer from its stored segments, bump its version."""
    segs = load_segments(s, [tid])[tid]
    s.execute(update(TrajectoryRow).where(TrajectoryRow.id == tid).values(
        version=TrajectoryRow.version + 1, updated_at=utcnow(), **derived(segs), **extra))


def _parent(s: Session, settings: dict[str, Any]) -> tuple[str | None, int | None]:
    parent = settings.get("parent_id")
    bp = settings.get("branch_point")
    bp = bp if isinstance(bp, int) and not isinstance(bp, bool) else None
    # The parent may live in another database (an exported copy); settings keep it verbatim.
    if parent is None or s.get(TrajectoryRow, str(parent)) is None:
        return None, bp
    return str(parent), bp


def save_trajectory(s: Session, traj: Trajectory, *, worker: str | None) -> None:
    """Insert or fully update a trajectory: its problem, run, row and every segment (positions
    beyond ``len(traj.segments)`` are deleted). ``traj.problem.id`` is filled in when it was None,
    so the caller's object and the store agree."""
    [(pid, _)] = upsert_problems(s, [traj.problem])
    traj.problem.id = pid
    run_id = ensure_run(s, traj.settings)
    parent_id, branch_point = _parent(s, traj.settings)
    now = utcnow()
    row = s.get(TrajectoryRow, traj.id)
    values = {"problem_id": pid, "run_id": run_id, "parent_id": parent_id,
              "branch_point": branch_point, "status": traj.status, "prompt": traj.prompt,
              "settings": jsonable(dict(traj.settings)), "error": traj.error,
              "tokens": int(traj.tokens or 0), "created_at": parse_ts(traj.created_at),
              "updated_at": now, **derived(traj.segments)}
    if traj.status == "running":
        values["worker"] = worker
        values["finished_at"] = None
    elif row is None or row.finished_at is None or row.status == "running":
        values["finished_at"] = now
    if row is None:
        s.add(TrajectoryRow(id=traj.id, version=1, review_status="pending",
                            shuffle=shuffle_key(traj.id), **values))
        s.flush()
    else:
        for k, v in values.items():
            setattr(row, k, v)
        row.version = row.version + 1
        s.flush()
    sync_segments(s, traj.id, traj.segments)


def insert_trajectories(s: Session, trajs: Sequence[Trajectory], *, worker: str | None) -> None:
    """Bulk path for trajectories known to be new (batch import, benchmarks): executemany inserts
    instead of per-row reads. Existing ids fall back to :func:`save_trajectory`."""
    existing = set(s.scalars(select(TrajectoryRow.id).where(
        TrajectoryRow.id.in_([t.id for t in trajs]))))
    for t in trajs:
        if t.id in existing:
            save_trajectory(s, t, worker=worker)
    trajs = [t for t in trajs if t.id not in existing]
    if not trajs:
        return
    for t, (pid, _) in zip(trajs, upsert_problems(s, [t.problem for t in trajs]), strict=True):
        t.problem.id = pid
    now = utcnow()
    rows, segs = [], []
    runs: dict[str, str | None] = {}
    for t in trajs:
        key = json.dumps(jsonable(t.settings), sort_keys=True)
        if key not in runs:
            runs[key] = ensure_run(s, t.settings)
        parent_id, branch_point = _parent(s, t.settings) if "parent_id" in t.settings else (
            None, None)
        rows.append({"id": t.id, "problem_id": t.problem.id, "run_id": runs[key],
                     "parent_id": parent_id, "branch_point": branch_point, "status": t.status,
                     "prompt": t.prompt, "settings": jsonable(dict(t.settings)),
                     "error": t.error, "tokens": int(t.tokens or 0),
                     "created_at": parse_ts(t.created_at), "updated_at": now,
                     "finished_at": None if t.status == "running" else now,
                     "worker": worker if t.status == "running" else None,
                     "version": 1, "review_status": "pending", "shuffle": shuffle_key(t.id),
                     **derived(t.segments)})
    s.execute(insert(TrajectoryRow.__table__), rows)
    for t in trajs:
        values = [_segment_values(seg) for seg in t.segments]
        if any(arts for _, arts in values):
            sync_segments(s, t.id, t.segments)
            continue
        segs += [{"trajectory_id": t.id, "position": pos, "created_at": now, **v}
                 for pos, (v, _) in enumerate(values)]
    if segs:
        s.execute(insert(SegmentRow.__table__), segs)


def record_segment(s: Session, tid: str, index: int, seg: Segment) -> None:
    """The engine's SegmentFinished: upsert one position, keep counters and version current."""
    if s.get(TrajectoryRow, tid) is None:
        raise NotFoundError(f"segment {index} for unknown trajectory {tid!r}: the trajectory "
                            "row is written on TrajectoryStarted, which this store never saw")
    sync_segments(s, tid, [seg], start=index, truncate=False)
    _refresh(s, tid)


def checkpoint_segment(s: Session, tid: str, index: int, seg: Segment) -> None:
    """A growing segment's text so far (the Recorder's checkpoint, once a second per stream):
    that row and the trajectory's version and ``updated_at``, in two or three statements; the
    counters wait for the segment to finish (:func:`record_segment`)."""
    values, arts = _segment_values(seg)
    if arts:  # an open segment has no images yet; if it ever does, the full path
        record_segment(s, tid, index, seg)
        return
    now = utcnow()
    if not s.execute(update(TrajectoryRow).where(TrajectoryRow.id == tid).values(
            version=TrajectoryRow.version + 1, updated_at=now)).rowcount:
        raise NotFoundError(f"segment {index} for unknown trajectory {tid!r}: the trajectory "
                            "row is written on TrajectoryStarted, which this store never saw")
    if not s.execute(update(SegmentRow).where(SegmentRow.trajectory_id == tid,
                                              SegmentRow.position == index)
                     .values(**values)).rowcount:
        s.execute(insert(SegmentRow.__table__),
                  [{"trajectory_id": tid, "position": index, "created_at": now, **values}])


def truncate_segments(s: Session, tid: str, keep: int) -> int:
    """Delete positions ``>= keep`` (a rewind); returns how many went."""
    if s.get(TrajectoryRow, tid) is None:
        raise NotFoundError(f"no trajectory {tid!r} in the store")
    n = s.execute(delete(SegmentRow).where(SegmentRow.trajectory_id == tid,
                                           SegmentRow.position >= keep)).rowcount
    if n:
        _refresh(s, tid)
    return n


def delete_trajectory(s: Session, tid: str) -> None:
    if s.execute(delete(TrajectoryRow).where(TrajectoryRow.id == tid)).rowcount == 0:
        raise NotFoundError(f"no trajectory {tid!r} in the store")


# --- trajectories: reading ---------------------------------------------------------------------

def _build(r: Any, problem: Problem, segments: list[Segment]) -> Trajectory:
    return Trajectory(problem=problem, prompt=r.prompt, segments=segments, status=r.status,
                      id=r.id, settings=dict(r.settings or {}), error=r.error, tokens=r.tokens,
                      created_at=format_ts(r.created_at) or "")


def load_many(s: Session, rows: Sequence[Any]) -> list[Trajectory]:
    """Trajectories for already-selected ``trajectories`` rows, in that order (3 queries)."""
    if not rows:
        return []
    pids = {r.problem_id for r in rows}
    problems = {p.id: problem_from_row(p) for p in s.execute(
        select(ProblemRow.__table__).where(ProblemRow.id.in_(pids)))}
    segs = load_segments(s, [r.id for r in rows])
    # Problems are shared between trajectories of a batch: give each its own copy.
    return [_build(r, _copy_problem(problems[r.problem_id]), segs[r.id]) for r in rows]


def _copy_problem(p: Problem) -> Problem:
    return Problem(question=p.question, answer=p.answer, kind=p.kind,
                   tests=json_copy(p.tests), id=p.id, meta=json_copy(p.meta) if p.meta else {})


def load_trajectory(s: Session, tid: str) -> tuple[Trajectory, int]:
    row = s.execute(select(TrajectoryRow.__table__).where(TrajectoryRow.id == tid)).first()
    if row is None:
        raise NotFoundError(f"no trajectory {tid!r} in the store")
    return load_many(s, [row])[0], row.version
