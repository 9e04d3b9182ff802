"""``startui review …`` and ``startui users …``: script what is obvious, review only the rest.

    startui review list --run seed-1 --verdict wrong
    startui review accept --run seed-1 --verdict correct     # every rule-correct pending one
    startui review accept 3f2c… --score 5 --label "good tool use"
    startui review undo
    startui users add ann --role admin

Exit codes: 0 ok, 1 bad input (unknown id, label, a stale-output block, a refused action),
2 database problem.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from startui.review import decisions, users
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
                                 comment=args.comment or "", override_reason=args.reason)
            except BAD_INPUT as e:
                failed += 1
                _error(f"{tid}: {e}" if len(args.ids) > 1 else e)
                continue
            print(f"{tid} {decision} by {reviewer}")
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
        p.set_defaults(func=cmd_decide, verb=verb)
    u = rs.add_parser("undo", help="take your last decision back")
    u.add_argument("--reviewer")
    u.set_defaults(func=cmd_undo)
    for p in [ls, u, *[rs.choices[v] for v in VERBS]]:
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
