"""``python -m startui import`` and ``python -m startui stats``: thin shells over the store.

``startui.cli`` calls :func:`register` with its subparsers; each command's ``func`` takes the
parsed namespace and returns the exit code (0 ok, 1 bad input, 2 database problem).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from startui.store import Store, StoreError, describe_url
from startui.store.problems import ProblemImportError, import_problems, parse_field_map


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="URL", default=None,
                   help="database URL (default: $STARTUI_DB_URL, else db/startui.sqlite, or "
                        "/data/startui.sqlite on Hugging Face Spaces)")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "import", help="import problems from JSONL, JSON, CSV, Parquet or a datasets directory",
        description="Import problems into the store. Re-importing the same file is a no-op; a "
                    "file with invalid rows imports nothing unless --skip-invalid.")
    p.add_argument("file", metavar="FILE", help="problems file or datasets save_to_disk folder")
    p.add_argument("--skip-invalid", action="store_true",
                   help="import the valid rows and report the invalid ones")
    p.add_argument("--map", action="append", default=[], metavar="FIELD=COLUMN",
                   help="read FIELD (id, question, answer, kind, tests, starter_code, source) "
                        "from COLUMN, e.g. --map question=prompt; repeatable")
    p.add_argument("--source", default=None,
                   help="source name for every row (default: the row's source, else the file "
                        "name); ids are unique per source")
    p.add_argument("--json", action="store_true", help="print the import report as JSON")
    _db_arg(p)
    p.set_defaults(func=cmd_import)

    p = subparsers.add_parser("stats", help="counts of problems, trajectories, segments, ...")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _db_arg(p)
    p.set_defaults(func=cmd_stats)


def _open(args: argparse.Namespace) -> Store | None:
    try:
        return Store(args.db)
    except StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return None


def cmd_import(args: argparse.Namespace) -> int:
    try:
        field_map = parse_field_map(args.map)
    except ProblemImportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    store = _open(args)
    if store is None:
        return 2
    with store:
        try:
            report = import_problems(store, args.file, skip_invalid=args.skip_invalid,
                                     field_map=field_map, source=args.source)
        except ProblemImportError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        except StoreError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        print(report.summary())
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    store = _open(args)
    if store is None:
        return 2
    with store:
        stats = store.stats()
        stats["database"] = describe_url(store.url)
    if args.json:
        print(json.dumps(stats))
        return 0
    by_status = ", ".join(f"{k} {v}" for k, v in stats["by_status"].items() if v) or "none"
    kinds = ", ".join(f"{k} {v}" for k, v in stats["problems_by_kind"].items())
    print(f"database      {stats['database']}")
    print(f"problems      {stats['problems']}" + (f" ({kinds})" if kinds else ""))
    print(f"trajectories  {stats['trajectories']} ({by_status})")
    print(f"segments      {stats['segments']}")
    print(f"tool calls    {stats['tool_calls']}")
    print(f"hints         {stats['hints']}")
    print(f"reviews       {stats['reviews']}: accepted {stats['accepted']}, rejected "
          f"{stats['rejected']}, not reviewed {stats['unreviewed']}")
    return 0
