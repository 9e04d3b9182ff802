"""``startui review …`` and ``startui users …``: script what is obvious, review only the rest.

    startui review list --run seed-1 --verdict wrong
    startui review accept --run seed-1 --verdict correct     # every rule-correct pending one
    startui review accept 3f2c… --score 5 --label "good tool use"
    startui review undo
    startui users add ann --role admin

Review campaigns (several reviewers per trajectory, disagreements adjudicated):

    startui review campaign create double --run seed-1 --verdict correct --per-problem 1 \
        --overlap 2 --reviewers ann,bob --adjudicator carol --by root
    startui review campaign next double --reviewer ann        # prints the id handed out
    startui review accept ID --campaign double --reviewer ann
    startui review agreement double [--json]
    startui review adjudicate double                          # what needs adjudication
    startui review adjudicate double ID accept --reviewer carol

Exit codes: 0 ok, 1 bad input (unknown id, label, a stale-output block, a refused action) or,
for ``campaign next``, nothing left to hand out; 2 database problem.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from startui.review import agreement, campaigns, decisions, users
from startui.review.decisions import StaleOutputsBlock
from startui.store import ConflictError, NotFoundError, Store, StoreError
from startui.store.queue import QueueFilter

VERBS = {"accept": "accepted", "reject": "rejected", "skip": "skipped"}


# What a person got wrong (exit 1) — anything else the store raises is the database's (exit 2).
BAD_INPUT = (ValueError, NotFoundError, ConflictError, StaleOutputsBlock, users.PermissionDenied)


def _error(msg: object, code: int = 1) -> int:
    """One line on stderr: drivers put hints on further lines ("Is the server running…")."""
    print(f"error: {' '.join(str(msg).split())}", file=sys.stderr)
    return code


def _store(args: argparse.Namespace) -> Store:
    return Store(args.db)


def _run(args: argparse.Namespace, fn: Any) -> int:
    try:
        with _store(args) as store:
            return fn(store)
    except BAD_INPUT as e:
        return _error(e)
    except (StoreError, SQLAlchemyError) as e:  # cannot open, locked, gone away, disk full
        return _error(e, 2)
    except (EOFError, KeyboardInterrupt):
        return _error("cancelled")


def cmd_list(args: argparse.Namespace) -> int:
    def go(store: Store) -> int:
        run = store.resolve_runs([args.run])[0] if args.run else None
        f = QueueFilter(review_status=None if args.status == "any" else args.status,
                        verdict=args.verdict, run_id=run, search=args.search, kind=args.kind)
        if args.limit < 1:
            raise ValueError(f"--limit is at least 1, not {args.limit}")
        page = store.queue_page(f, limit=args.limit)
        counts = store.queue_counts(f)
        if args.json:
            print(json.dumps({"counts": counts, "items": [s.to_dict() for s in page.items]}))
            return 0
        print(" · ".join(f"{k} {v}" for k, v in counts.items()))
        for s in page.items:
            q = " ".join(s.question.split())[:70]
            print(f"{s.id}  {s.review_status:<12} {s.tool_calls} tools  {s.answer or '-':<12} {q}")
        return 0

    return _run(args, go)


def cmd_decide(args: argparse.Namespace) -> int:
    decision = VERBS[args.verb]
    reviewer = args.reviewer or users.os_reviewer()

    def go(store: Store) -> int:
        if args.run and not args.ids:
            if not args.verdict:
                raise ValueError("by rule: name the verdict (--verdict correct|wrong)")
            n = decisions.decide_by_rule(store, runs=[args.run], reviewer=reviewer,
                                         decision=decision, verdict=args.verdict)
            print(f"{decision} {n} trajectories of {args.run} (rule verdict {args.verdict})")
            return 0
        if not args.ids:
            raise ValueError("name trajectory ids, or --run RUN --verdict V to decide by rule")
        if args.run or args.verdict:
            raise ValueError("either trajectory ids or --run RUN --verdict V, not both")
        failed = 0
        for tid in args.ids:  # each id on its own: one bad id does not stop the others
            try:
                decisions.decide(store, tid, reviewer=reviewer, decision=decision,
                                 score=args.score, labels=args.label or [],
                                 comment=args.comment or "", override_reason=args.reason,
                                 campaign=args.campaign)
            except BAD_INPUT as e:
                failed += 1
                _error(f"{tid}: {e}" if len(args.ids) > 1 else e)
                continue
            print(f"{tid} {decision} by {reviewer}"
                  + (f" in campaign {args.campaign}" if args.campaign else ""))
        return 1 if failed else 0

    return _run(args, go)


def cmd_undo(args: argparse.Namespace) -> int:
    reviewer = args.reviewer or users.os_reviewer()

    def go(store: Store) -> int:
        review = decisions.undo(store, reviewer)
        if review is None:
            return _error(f"{reviewer} has no decision left to undo")
        print(f"undid {review.decision} of {review.trajectory_id} by {reviewer}")
        return 0

    return _run(args, go)


def cmd_users(args: argparse.Namespace) -> int:
    def go(store: Store) -> int:
        if args.action == "list":
            rows = users.list_users(store)
            if args.json:
                print(json.dumps([vars(u) for u in rows]))
            for u in [] if args.json else rows:
                print(f"{u.name:<24} {u.role:<9} {'password' if u.has_password else 'no password'}")
            if not rows and not args.json:
                print("no users: nobody logs in, everyone reviews as their OS user")
            return 0
        if not args.name:
            raise ValueError(f"users {args.action} needs a NAME")
        if args.action == "role" and not args.role_value:
            raise ValueError("users role NAME ROLE: the role is admin, reviewer or viewer")
        if args.action != "role" and args.role_value:
            raise ValueError(f"users {args.action} takes one NAME, not {args.role_value!r} too "
                             "(the role of a new user is --role)")
        if args.action == "remove":
            users.remove_user(store, args.name)
            print(f"removed {args.name} (their reviews stay)")
        elif args.action == "role":
            users.set_role(store, args.name, args.role_value or "")
            print(f"{args.name} is now a {args.role_value}")
        else:
            users.check_name(args.name)  # before asking for a password
            existed = store.get_user(args.name) is not None
            password = _password(args)
            user = users.add_user(store, args.name, password, role=args.role)
            print(f"{'updated' if existed else 'added'} {user.name}: {user.role}, "
                  f"{'with' if password else 'without'} a password")
        return 0

    return _run(args, go)


def _csv(text: str | None) -> list[str]:
    return [x.strip() for x in (text or "").split(",") if x.strip()]


def cmd_campaign(args: argparse.Namespace) -> int:
    def go(store: Store) -> int:
        action = args.campaign_command
        if action == "create":
            run = store.resolve_runs([args.run])[0] if args.run else None
            f = QueueFilter(review_status=None if args.status == "any" else args.status,
                            verdict=args.verdict, run_id=run, kind=args.kind,
                            human_hint=args.human_hint, search=args.search)
            c = campaigns.create_campaign(
                store, args.name, by=args.by or users.os_reviewer(), filter=f,
                reviewers=_csv(args.reviewers), overlap=args.overlap,
                per_problem=args.per_problem, adjudicator=args.adjudicator,
                lease_seconds=round(args.lease_minutes * 60))
            if args.json:
                print(json.dumps(c.to_dict()))
            else:
                print(f"campaign {c.name}: {c.items} trajectories, each for {c.overlap} of "
                      f"{', '.join(c.reviewers)}"
                      + (f"; adjudicator {c.adjudicator}" if c.adjudicator else ""))
            return 0
        if action == "list":
            rows = campaigns.list_campaigns(store)
            if args.json:
                print(json.dumps([c.to_dict() for c in rows]))
                return 0
            if not rows:
                print("no campaigns yet: an admin creates one with `startui review campaign "
                      "create`")
            for c in rows:
                p = campaigns.progress(store, c.id)
                print(f"{c.name:<24} {c.status:<7} {p.done}/{c.items} done · overlap "
                      f"{c.overlap} · {p.disputed} to adjudicate · {', '.join(c.reviewers)}")
            return 0
        if action == "next":
            reviewer = args.reviewer or users.os_reviewer()
            tid = campaigns.next_item(store, args.name, reviewer)
            if tid is None:
                p = campaigns.progress(store, args.name)
                mine = p.reviewers.get(reviewer, {})
                print(f"nothing left for {reviewer} in {args.name}: {p.done} of {p.items} done, "
                      f"{mine.get('decided', 0)} decided by {reviewer}, {p.leased} held by "
                      "others now", file=sys.stderr)
                return 1
            print(tid)
            return 0
        if action == "progress":
            p = campaigns.progress(store, args.name)
            if args.json:
                print(json.dumps(p.to_dict()))
                return 0
            print(f"{p.campaign}: {p.done} of {p.items} done, {p.started} started, "
                  f"{p.untouched} untouched, {p.leased} held now · consensus {p.consensus} · "
                  f"to adjudicate {p.disputed} · adjudicated {p.adjudicated}")
            for name, n in p.reviewers.items():
                print(f"  {name:<20} decided {n['decided']} · skipped {n['skipped']} · "
                      f"holding {n['leased']} · left {n['remaining']}")
            return 0
        c = campaigns.close_campaign(store, args.name, by=args.by or users.os_reviewer(),
                                     reopen=action == "reopen")
        print(f"campaign {c.name} is {c.status}")
        return 0

    return _run(args, go)


def cmd_agreement(args: argparse.Namespace) -> int:
    def go(store: Store) -> int:
        report = agreement.campaign_agreement(store, args.campaign, steps_level=args.steps)
        print(json.dumps(report.to_dict()) if args.json else report.summary())
        return 0

    return _run(args, go)


def cmd_adjudicate(args: argparse.Namespace) -> int:
    who = args.reviewer or users.os_reviewer()

    def go(store: Store) -> int:
        if args.id is None:
            todo = campaigns.needs_adjudication(store, args.campaign, by=who)
            if args.json:
                print(json.dumps([d.to_dict() for d in todo]))
                return 0
            print(f"{len(todo)} item{'' if len(todo) == 1 else 's'} of {args.campaign} "
                  f"need{'s' if len(todo) == 1 else ''} adjudication")
            for d in todo:
                print(f"{d.trajectory_id}  " + " · ".join(f"{r} {v}" for r, v in d.votes.items()))
            return 0
        if args.decision is None:
            view = campaigns.adjudication_view(store, args.campaign, args.id, by=who)
            if args.json:
                print(json.dumps(view.to_dict()))
                return 0
            verdict = {True: "correct", False: "wrong", None: "unscored"}[view.correct]
            print(f"{view.trajectory_id} in {view.campaign}: {view.state} · version "
                  f"{view.version} · rule {verdict} · status {view.review_status}")
            for side in view.sides:
                print(f"  {side.reviewer}: {side.decision} · score {side.score or '-'} · labels "
                      f"{', '.join(side.labels) or '-'} · on version {side.version}"
                      + (f" · {side.comment!r}" if side.comment else ""))
                if side.step_labels:
                    print("    steps " + " ".join(f"{k}:{v:+d}" for k, v in
                                                  side.step_labels.items()))
                for e in side.edits:
                    for d in e.diffs:
                        print(f"    edit v{e.version} {d.change} {d.kind}: {d.before[:60]!r} -> "
                              f"{d.after[:60]!r}")
            return 0
        review = campaigns.adjudicate(store, args.campaign, args.id, args.decision, by=who,
                                      score=args.score, comment=args.comment or "",
                                      labels=args.label or [])
        print(f"{args.id} {review.decision} by {who} (adjudication in {args.campaign})")
        return 0

    return _run(args, go)


def _password(args: argparse.Namespace) -> str | None:
    """The new user's password: none (--no-password), one line of stdin, or typed twice. An
    empty one is refused: a user without a password is asked for with --no-password."""
    if args.no_password:
        return None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise ValueError("the passwords differ")
    if not password:
        raise ValueError("an empty password; for a user who logs in through Hugging Face, "
                         "use --no-password")
    return password


def register(sub: Any) -> None:
    r = sub.add_parser("review", help="the review queue from the command line")
    rs = r.add_subparsers(dest="review_command", required=True)
    ls = rs.add_parser("list", help="the queue, with counts per status")
    ls.add_argument("--run")
    ls.add_argument("--status", default="pending",
                    help="pending, accepted, rejected, skipped, needs_review or any")
    ls.add_argument("--verdict", choices=["correct", "wrong", "unscored"])
    ls.add_argument("--kind", choices=["math", "code"])
    ls.add_argument("--search")
    ls.add_argument("--limit", type=int, default=20)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)
    for verb in VERBS:
        p = rs.add_parser(verb, help=f"{verb} trajectories by id, or every one of a run whose "
                                     "rule verdict matches (--run R --verdict V)")
        p.add_argument("ids", nargs="*")
        p.add_argument("--run")
        p.add_argument("--verdict", choices=["correct", "wrong", "unscored"])
        p.add_argument("--reviewer", help="default: $STARTUI_REVIEWER or the OS user")
        p.add_argument("--score", type=int, choices=range(1, 6))
        p.add_argument("--label", action="append", help="a label from the label set (repeat)")
        p.add_argument("--comment")
        p.add_argument("--reason", help="accept although outputs are stale, for this reason")
        p.add_argument("--campaign", help="record it as your vote in this review campaign")
        p.set_defaults(func=cmd_decide, verb=verb)
    u = rs.add_parser("undo", help="take your last decision back")
    u.add_argument("--reviewer")
    u.set_defaults(func=cmd_undo)
    for p in [ls, u, *[rs.choices[v] for v in VERBS], *_register_campaigns(rs)]:
        p.add_argument("--db", default=None, help="database URL (env STARTUI_DB_URL)")

    us = sub.add_parser("users", help="who may review: add, list, remove, role")
    us.add_argument("action", choices=["add", "list", "remove", "role"])
    us.add_argument("name", nargs="?")
    us.add_argument("role_value", nargs="?", metavar="ROLE", help="for `role`: the new role")
    us.add_argument("--role", default="reviewer", choices=["admin", "reviewer", "viewer"])
    how = us.add_mutually_exclusive_group()
    how.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of stdin (default: prompt twice)")
    how.add_argument("--no-password", action="store_true",
                     help="a user who logs in through Hugging Face")
    us.add_argument("--json", action="store_true")
    us.add_argument("--db", default=None, help="database URL (env STARTUI_DB_URL)")
    us.set_defaults(func=cmd_users)


def _register_campaigns(rs: Any) -> list[argparse.ArgumentParser]:
    """``review campaign …``, ``review agreement``, ``review adjudicate``; returns the parsers
    that take ``--db``."""
    cp = rs.add_parser("campaign", help="review campaigns: several reviewers per trajectory")
    cs = cp.add_subparsers(dest="campaign_command", required=True)
    create = cs.add_parser("create", help="a campaign from a queue filter (admins)")
    create.add_argument("name")
    create.add_argument("--run", help="the run's name or id")
    create.add_argument("--verdict", choices=["correct", "wrong", "unscored"])
    create.add_argument("--human-hint", action=argparse.BooleanOptionalAction, default=None,
                        help="only trajectories with (--no-human-hint: without) a person's hint")
    create.add_argument("--kind", choices=["math", "code"])
    create.add_argument("--search")
    create.add_argument("--status", default="pending",
                        help="review status to take: pending (default), accepted, rejected, "
                             "skipped, needs_review or any")
    create.add_argument("--per-problem", type=int, help="at most this many per problem")
    create.add_argument("--overlap", type=int, default=2, help="reviewers per trajectory")
    create.add_argument("--reviewers", required=True, help="comma-separated user names")
    create.add_argument("--adjudicator", help="who settles disagreements (besides admins)")
    create.add_argument("--lease-minutes", type=float,
                        default=campaigns.DEFAULT_LEASE_SECONDS / 60,
                        help="how long a handed-out item stays a reviewer's (default 15)")
    create.add_argument("--by", help="the admin creating it (default: $STARTUI_REVIEWER or "
                                     "the OS user)")
    create.add_argument("--json", action="store_true")
    listing = cs.add_parser("list", help="campaigns and how far they are")
    listing.add_argument("--json", action="store_true")
    nxt = cs.add_parser("next", help="hand a reviewer their next item; prints its id")
    nxt.add_argument("name")
    nxt.add_argument("--reviewer", help="default: $STARTUI_REVIEWER or the OS user")
    prog = cs.add_parser("progress", help="per campaign and per reviewer")
    prog.add_argument("name")
    prog.add_argument("--json", action="store_true")
    closing = []
    for verb in ("close", "reopen"):
        c = cs.add_parser(verb, help=f"{verb} a campaign (admins)")
        c.add_argument("name")
        c.add_argument("--by")
        closing.append(c)
    for p in (create, listing, nxt, prog, *closing):
        p.set_defaults(func=cmd_campaign)

    ag = rs.add_parser("agreement", help="Cohen's kappa and Krippendorff's alpha of a campaign")
    ag.add_argument("campaign")
    ag.add_argument("--steps", choices=["nominal", "interval"], default="nominal",
                    help="how step labels (+1/0/-1) are compared (default nominal)")
    ag.add_argument("--json", action="store_true")
    ag.set_defaults(func=cmd_agreement)

    adj = rs.add_parser("adjudicate", help="list disagreements, show one, or settle it")
    adj.add_argument("campaign")
    adj.add_argument("id", nargs="?", help="a trajectory: show every review side by side")
    adj.add_argument("decision", nargs="?", choices=["accept", "reject"],
                     help="the final decision on it")
    adj.add_argument("--reviewer", help="the admin or adjudicator (default: $STARTUI_REVIEWER "
                                        "or the OS user)")
    adj.add_argument("--score", type=int, choices=range(1, 6))
    adj.add_argument("--label", action="append")
    adj.add_argument("--comment")
    adj.add_argument("--json", action="store_true")
    adj.set_defaults(func=cmd_adjudicate)
    return [create, listing, nxt, prog, *closing, ag, adj]
