"""A trajectory's digest: everything selection and the analytics take from its text, computed
once per version instead of on every read.

Selection needs, per trajectory, its length and the filter rules it breaks; the Dataset tab
needs its hint facts and what it would have answered after each hint round. Both came from
reading every segment of every trajectory of the runs — 2,000,000 segments for 100,000
trajectories, tens of seconds per draw. A digest holds the *raw measures* instead (for the
default :class:`~startui.rft.filters.FilterConfig`: the most repeated 12-gram's count, the most
repeated paragraph's count, whether an error stands at the end, tool calls, characters …), so a
selection with other thresholds, rules switched off, another length or tool-call cap is still
answered exactly from the digest. Only another n-gram size or minimum paragraph length needs the
text again: :func:`answers` says so and the caller takes the slow, exact path.

The store keeps digests (:mod:`startui.store.digests`: a digest is valid for one version and
segment count of the trajectory, in format :data:`SCHEMA`); :func:`current` reads them for the
runs and computes the missing or stale ones from the text, 500 trajectories at a time, writing
them back, so an old store pays once. :func:`keep_current` digests trajectories as a batch
finishes them. Scores and reviews are not in a digest: they change on their own and are read in
bulk beside it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from startui.answers import answers_match, extract_answer
from startui.rft.filters import (
    RULES,
    FilterConfig,
    executed_outputs,
    has_unresolved_error,
    max_ngram_repeats,
    max_paragraph_repeats,
    prose,
)
from startui.rft.modes import mode_of
from startui.store.digests import DigestRecord
from startui.trajectory import TOOL_LIMIT_ERROR, Segment, Trajectory

if TYPE_CHECKING:
    from startui.store import Store

log = logging.getLogger(__name__)

# The digest format; bump it when what digest() writes changes, and every stored digest is
# recomputed on its next read.
SCHEMA = 1
DEFAULTS = FilterConfig()
BATCH = 500  # trajectories loaded per read while digesting


def answer_before(segments: Sequence[Segment], end: int) -> str | None:
    """What the model had answered before segment ``end``: the last paragraph of its own prose
    that says something answer-like."""
    prose_ = [s.text for s in segments[:end] if s.source == "model" and s.kind in ("think",
                                                                                    "answer")]
    for text in reversed(prose_):
        answer, _ = extract_answer(text)
        if answer is not None:
            return answer
    return None


def round_answers(traj: Trajectory) -> tuple[int, dict[int, int]]:
    """(hint rounds the run planned, {round: index of its hint segment}) of a trajectory; a
    plan that is not a number counts as none (the curve then follows the rounds that ran)."""
    hints_cfg = traj.settings.get("hints") if isinstance(traj.settings.get("hints"), dict) else {}
    try:
        planned = int((hints_cfg or {}).get("rounds") or 0)
    except (TypeError, ValueError):
        planned = 0
    round_at = {int(s.meta["round"]): i for i, s in enumerate(traj.segments)
                if s.kind == "hint" and isinstance(s.meta.get("round"), int)}
    return planned, round_at


def hint_facts(segs: Sequence[Segment]) -> list[list[Any]]:
    """Per hint: [category, source, whether the model ran code before the next hint, whether
    all of that code ran without error]."""
    out: list[list[Any]] = []
    hint_at = [i for i, s in enumerate(segs) if s.kind == "hint"]
    for n, i in enumerate(hint_at):
        end = hint_at[n + 1] if n + 1 < len(hint_at) else len(segs)
        outs = [s for s in segs[i + 1:end] if s.kind == "output" and s.source == "kernel"
                and s.meta.get("error") != TOOL_LIMIT_ERROR]
        h = segs[i]
        out.append([str(h.meta.get("category") or h.source), h.source, bool(outs),
                    bool(outs) and not any(o.meta.get("error") for o in outs)])
    return out


def matches(data: dict[str, Any], kind: str, reference: str | None) -> dict[str, Any] | None:
    """Whether the answer after each round, and the final one, match ``reference`` (None where
    the scaling curve does not count the trajectory: not math, no reference, no rounds)."""
    if kind != "math" or reference is None or not (data["planned"] or data["rounds"]):
        return None
    return {"reference": reference,
            "rounds": [answers_match(a, reference) for _, a in data["rounds"]],
            "final": answers_match(data["final"], reference)}


def digest(traj: Trajectory) -> dict[str, Any]:
    """The text-derived facts of ``traj`` (JSON): what :func:`startui.rft.select.candidate` and
    :func:`startui.rft.analytics.facts` take from its segments, for any filter thresholds."""
    segs = traj.segments
    text = prose(traj)
    planned, round_at = round_answers(traj)
    data: dict[str, Any] = {
        "mode": mode_of(traj),
        "chars": sum(len(s.render()) for s in segs),
        "tool_calls": traj.tool_calls,
        # the filter rules' raw measures (see checker())
        "ngram": max_ngram_repeats(text, DEFAULTS.ngram),
        "paragraphs": max_paragraph_repeats(text, DEFAULTS.min_paragraph_chars),
        "executed": bool(executed_outputs(traj)),
        "unresolved_error": has_unresolved_error(traj),
        "refused": any(s.kind == "output" and s.meta.get("error") == TOOL_LIMIT_ERROR
                       for s in segs),
        # the analytics'
        # as one JSON text: a draw reads 100,000 digests with few distinct hint sequences, and
        # looks each text up once (startui.rft.analytics) instead of building its lists
        "hints": json.dumps(hint_facts(segs), separators=(",", ":")),
        "planned": planned,
        "rounds": [[k, answer_before(segs, i)] for k, i in sorted(round_at.items())],
        "final": answer_before(segs, len(segs)),
    }
    data["matched"] = matches(data, traj.problem.kind, traj.problem.answer)
    return data


# The filter rules a digest has the measures for (checker() tests them in this order).
KNOWN_RULES = ("repetition", "no_tool_call", "unresolved_error", "too_long", "too_short",
               "tool_call_cap")


def answers(cfg: FilterConfig) -> bool:
    """Whether a digest answers :func:`checker` for ``cfg`` exactly: the repetition rule's
    n-gram size and minimum paragraph length are the defaults the digest measured (or the rule
    is off), and the filters have no rule the digest knows nothing of. Every other setting is
    a threshold on a measure the digest holds."""
    return RULES == KNOWN_RULES and ("repetition" in cfg.disabled or (
        cfg.ngram == DEFAULTS.ngram and cfg.min_paragraph_chars == DEFAULTS.min_paragraph_chars))


def checker(cfg: FilterConfig) -> Callable[[dict[str, Any], int], list[str]]:
    """``check(data, tokens)``: the rules a trajectory with this digest (and ``tokens``
    generated) breaks under ``cfg``, in :data:`~startui.rft.filters.RULES` order —
    :func:`startui.rft.filters.check` without the text, for a ``cfg`` the digest
    :func:`answers`. Made once per selection (it runs 100,000 times a draw)."""
    on = set(RULES) - set(cfg.disabled)
    rep, no_tool, error = "repetition" in on, "no_tool_call" in on, "unresolved_error" in on
    long, short, cap = "too_long" in on, "too_short" in on, "tool_call_cap" in on
    ngram, paragraphs = cfg.max_ngram_repeats, cfg.max_paragraph_repeats
    max_chars, max_tokens, min_chars = cfg.max_chars, cfg.max_tokens, cfg.min_chars
    max_tools = cfg.max_tool_calls

    def check(data: dict[str, Any], tokens: int) -> list[str]:
        out = []  # in KNOWN_RULES (= RULES) order
        n_chars = data["chars"]
        if rep and (data["ngram"] >= ngram or data["paragraphs"] >= paragraphs):
            out.append("repetition")
        if no_tool and not data["executed"]:
            out.append("no_tool_call")
        if error and data["unresolved_error"]:
            out.append("unresolved_error")
        if long and ((max_chars is not None and n_chars > max_chars)
                     or (max_tokens is not None and tokens > max_tokens)):
            out.append("too_long")
        if short and n_chars < min_chars:
            out.append("too_short")
        if cap and (data["tool_calls"] > max_tools or data["refused"]):
            out.append("tool_call_cap")
        return out

    return check


def round_correct(data: dict[str, Any], kind: str, reference: str | None,
                  correct: bool | None) -> tuple[bool | None, ...]:
    """Correct after k = 0..R end-of-reasoning hint rounds (the scaling curve's points): what
    the model would have answered when it stopped before round k + 1, and after the last
    round the rule score (or, unscored, the final answer). Empty where the curve does not count
    the trajectory. The digest's matches are reused while the reference answer is the same."""
    if kind != "math" or reference is None:
        return ()
    planned = data["planned"]
    round_at = dict(data["rounds"])
    if not (planned or round_at):
        return ()
    m = data.get("matched")
    if m is None or m.get("reference") != reference:  # the problem's answer changed
        m = matches(data, kind, reference)
    by_round = {k: ok for (k, _), ok in zip(data["rounds"], m["rounds"], strict=True)}
    total = max([planned, *round_at])
    out: list[bool | None] = []
    for k in range(total + 1):
        if k + 1 in round_at:  # the model had stopped; this is what it would have answered
            out.append(by_round[k + 1])
        else:  # no more rounds happened: the final answer stands
            out.append(correct if correct is not None else m["final"])
    return tuple(out)


# --- keeping digests current -------------------------------------------------------------

def compute(store: Store, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Digest ``ids`` from their text, ``BATCH`` per read, and store the digests: {id: data}."""
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(ids), BATCH):
        made = [(traj.id, version, n, SCHEMA, digest(traj))
                for traj, version, n in store.load_texts(ids[i:i + BATCH])]
        store.put_digests(made)
        out.update((tid, data) for tid, _, _, _, data in made)
    return out


def current(store: Store, run_ids: Sequence[str]) -> list[DigestRecord]:
    """Every trajectory of the runs with a valid digest, in (created_at, id) order: the stored
    ones, and the missing or stale ones computed now (and stored for the next read)."""
    recs = store.digest_records(run_ids, schema=SCHEMA)
    todo = [r.id for r in recs if r.data is None]
    if todo:
        made = compute(store, todo)
        for r in recs:
            if r.data is None:
                r.data = made.get(r.id)
        recs = [r for r in recs if r.data is not None]  # deleted meanwhile
    return recs


def keep_current(store: Store, ids: Sequence[str]) -> int:
    """Digest trajectories now (a batch just finished them), so the next draw of the Dataset
    tab reads them instead of their text. Never fails the caller: a digest not made now is
    made on the next read. Returns how many were stored."""
    try:
        return len(compute(store, list(ids)))
    except Exception:  # noqa: BLE001 - an optimisation; the lazy path recomputes
        log.warning("could not digest %d trajectories now; the next read will", len(ids),
                    exc_info=True)
        return 0
