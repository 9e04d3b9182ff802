"""``python -m startui generate | score | export | report``: Hint-RFT as commands.

    python -m startui generate problems.jsonl --run seed-1 --greedy-baseline --samples 4 \\
        --preset paper --concurrency 8 --backend openai --base-url http://127.0.0.1:8000/v1
    python -m startui score --run seed-1
    python -m startui export out/seed-1 --run seed-1 --dataset seed
    python -m startui report seed-1 --html out/seed-1.html

Thin shells over :mod:`startui.rft.generate`, :mod:`startui.rft.select`,
:mod:`startui.rft.export` and :mod:`startui.rft.report`. Exit codes: 0 ok, 1 bad input (file, run,
option), 2 database or backend problem, 130 stopped by Ctrl-C (run the same command again to
finish).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from startui.cli.common import add_generation_args, backend_options, engine_config, policy
from startui.rft.filters import RULES, FilterConfig, ModifyConfig
from startui.rft.generate import PAPER_PRESET, BatchConfig, BatchReport, clock

PRESETS = {"paper": PAPER_PRESET}
INTERRUPTED = 130


class ProgressBar:
    """A one-line progress bar with rate and ETA on a terminal; a line every few seconds when
    stderr is a file (CI logs)."""

    def __init__(self, label: str, out: TextIO | None = None, *, every: float = 5.0,
                 enabled: bool = True) -> None:
        out = out or sys.stderr  # looked up now: tests and tools swap sys.stderr
        self.label, self.out, self.every, self.enabled = label, out, every, enabled
        self.tty = out.isatty()
        self._last = 0.0
        self._drawn = False

    def update(self, done: int, total: int, rate: float, extra: str = "",
               final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not final and not self.tty and now - self._last < self.every:
            return
        self._last = now
        frac = done / total if total else 1.0
        eta = (total - done) / rate if rate > 0 else None
        bar = "#" * int(24 * frac) + "." * (24 - int(24 * frac))
        line = (f"{self.label} {done}/{total} {frac:4.0%} |{bar}| {rate:.2f}/s ETA "
                f"{clock(eta)}" + (f" · {extra}" if extra else ""))
        if self.tty:
            self.out.write("\r\033[K" + line + ("\n" if final else ""))
        else:
            self.out.write(line + "\n")
        self.out.flush()
        self._drawn = True


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="URL", default=None,
                   help="database URL (default: $STARTUI_DB_URL, else db/startui.sqlite)")


def register(subparsers: Any) -> None:

    p = subparsers.add_parser(
        "generate", help="batch Hint-infer over a problem file or the stored problems",
        description="Run Hint-infer on every problem (--samples per problem, optionally a greedy "
                    "baseline), several trajectories at once, saving as it goes. Re-running the "
                    "same --run skips finished work and finishes interrupted trajectories; "
                    "Ctrl-C stops cleanly. Several workers (on one machine or many) can run the "
                    "same command on one PostgreSQL store (--db): they share the run's tasks.")
    p.add_argument("problems", nargs="?", metavar="PROBLEMS",
                   help="a problem file to import first (JSONL, JSON, CSV, Parquet or a "
                        "datasets folder); or use --from-store / --source")
    p.add_argument("--run", required=True, metavar="NAME",
                   help="the run's name: trajectories are grouped, resumed and exported by it")
    p.add_argument("--from-store", action="store_true", help="every problem already stored")
    p.add_argument("--source", help="without PROBLEMS: the stored problems of this source (an "
                                    "import's name); with PROBLEMS: the source name to import "
                                    "them under")
    p.add_argument("--kind", choices=("math", "code"), help="only problems of this kind")
    p.add_argument("--limit", type=int, help="at most this many problems")
    p.add_argument("--samples", type=int, default=1, help="hinted trajectories per problem")
    p.add_argument("--greedy-baseline", action="store_true",
                   help="also run plain greedy inference (temperature 0, no hints) per problem, "
                        "as D_seed selection needs")
    p.add_argument("--preset", choices=sorted(PRESETS),
                   help="paper: temperature 0.6, top-p 0.95, at most 6 tool calls (flags given "
                        "explicitly win)")
    p.add_argument("--concurrency", type=int, default=4,
                   help="trajectories in flight (the kernel pool boots a kernel ahead for each)")
    p.add_argument("--score", action="store_true",
                   help="rule-score each trajectory as it finishes (else: `startui score`)")
    p.add_argument("--worker-name", metavar="NAME",
                   help="this worker's name in the run's task claims (default HOST:PID; give "
                        "each worker its own)")
    p.add_argument("--lease", type=float, default=60.0, metavar="SECONDS",
                   help="a claimed task stays this worker's this long unless renewed (it is, "
                        "every third of it, while the worker lives); a worker that dies leaves "
                        "its tasks to the others after it (default 60)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--json", action="store_true", help="print the final report as JSON")
    add_generation_args(p)
    # None = "not given", so a preset can fill it in (see _sampling)
    p.set_defaults(temperature=None, top_p=None, max_tool_calls=None)
    _db_arg(p)
    p.set_defaults(func=cmd_generate)

    p = subparsers.add_parser("score", help="rule-score a run's trajectories (re-computable)",
                              description="Score every finished trajectory of the runs: math by "
                                          "final-answer equivalence (math-verify), code by "
                                          "running its tests in a fresh kernel.")
    p.add_argument("--run", action="append", required=True, metavar="NAME",
                   help="a run (repeatable)")
    p.add_argument("--all", action="store_true",
                   help="re-score everything (default: only trajectories without a current score)")
    p.add_argument("--concurrency", type=int, default=2, help="code problems scored at once")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per code test")
    p.add_argument("--json", action="store_true")
    _db_arg(p)
    p.set_defaults(func=_failing_clearly(cmd_score))

    p = subparsers.add_parser(
        "export", help="select (D_seed / D_START / steps), filter, modify and write a training set",
        description="Write OUT/data.jsonl, OUT/data.parquet, OUT/dataset/ (datasets."
                    "load_from_disk) and OUT/manifest.json for the trajectories the paper's "
                    "selection keeps. Reviewers' decisions override the rules.")
    p.add_argument("out", metavar="OUT", help="output folder")
    p.add_argument("--run", action="append", required=True, metavar="NAME",
                   help="a run (repeatable)")
    p.add_argument("--dataset", choices=("seed", "start", "steps"), default="start",
                   help="seed: problems where greedy is wrong and a hinted trajectory right "
                        "(D_seed); start: every correct trajectory (D_START); steps: the "
                        "accepted trajectories with step labels, as stepwise supervision "
                        "(prompt, completions, labels) for a process reward model. Default start")
    p.add_argument("--per-problem", type=int, default=None, metavar="K",
                   help="at most K trajectories per problem (human-accepted first, then "
                        "rule-correct, then shortest); default 1, no cap for --dataset steps")
    p.add_argument("--keep-incorrect", action="store_true",
                   help="do not require a correct rule score")
    p.add_argument("--modes", help="comma-separated trajectory modes to export (default: hinted "
                                   "for seed, all but greedy for start)")
    p.add_argument("--disable", action="append", default=[], choices=RULES, metavar="RULE",
                   help=f"switch a filter rule off (repeatable): {', '.join(RULES)}")
    f = FilterConfig()
    p.add_argument("--max-chars", type=int, default=f.max_chars,
                   help=f"longest completion kept, characters (default {f.max_chars})")
    p.add_argument("--max-tokens", type=int, default=None, help="longest, in generated tokens")
    p.add_argument("--max-tool-calls", type=int, default=f.max_tool_calls)
    p.add_argument("--ngram", type=int, default=f.ngram, help="repetition: n-gram length")
    p.add_argument("--max-ngram-repeats", type=int, default=f.max_ngram_repeats,
                   help="repetition: drop when an n-gram occurs this often")
    p.add_argument("--mask-hints", choices=("none", "human", "all"), default="none",
                   help="hints left out of the loss (kernel outputs always are)")
    p.add_argument("--strip-human-hints", action="store_true",
                   help="remove the text of hints people typed")
    p.add_argument("--normalize-outputs", action="store_true",
                   help="canonical kernel output blocks (whitespace, scratch paths, length)")
    p.add_argument("--max-output-chars", type=int, default=ModifyConfig().max_output_chars,
                   help="with --normalize-outputs: cut longer outputs to head and tail")
    p.add_argument("--formats", default="jsonl,parquet,datasets",
                   help="comma-separated: jsonl, parquet, datasets")
    p.add_argument("--dry-run", action="store_true", help="report the selection, write nothing")
    p.add_argument("--json", action="store_true", help="print the manifest (or selection) JSON")
    _db_arg(p)
    p.set_defaults(func=_failing_clearly(cmd_export))

    p = subparsers.add_parser("report", help="analytics of runs as a self-contained HTML page")
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--html", required=True, metavar="OUT", help="the HTML file to write")
    p.add_argument("--campaign", metavar="NAME",
                   help="only the items of this review campaign (its agreement over time too)")
    p.add_argument("--json", action="store_true", help="also print the tables as JSON")
    _db_arg(p)
    p.set_defaults(func=_failing_clearly(cmd_report))


# --- helpers ---------------------------------------------------------------------------------

def _error(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _open_store(args: argparse.Namespace) -> Any:
    from startui.store import Store

    return Store(args.db)


class _Fail(Exception):
    """A command's clear error: the message goes to stderr, ``code`` is the exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@contextlib.contextmanager
def _runs_in_store(args: argparse.Namespace, names: list[str]) -> Iterator[tuple[Any, list[Any]]]:
    """The store and the named runs in it (exit 2: the database; exit 1: an unknown run)."""
    from startui.store import StoreError

    try:
        store = _open_store(args)
    except StoreError as e:
        raise _Fail(str(e), 2) from e
    with store:
        try:
            runs = store.resolve_runs(names)
        except (StoreError, ValueError) as e:
            raise _Fail(str(e)) from e
        yield store, runs


def _failing_clearly(command: Callable[[argparse.Namespace], int],
                     ) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except _Fail as e:
            return _error(str(e), e.code)

    return run


def _sampling(args: argparse.Namespace) -> None:
    """Fill flags the user left out from the preset, then from the engine's defaults."""
    from startui.infer.engine import EngineConfig

    preset = PRESETS.get(args.preset or "", {})
    defaults = EngineConfig()
    for key in ("temperature", "top_p", "max_tool_calls"):
        if getattr(args, key) is None:
            setattr(args, key, preset.get(key, getattr(defaults, key)))


def _problems(args: argparse.Namespace, store: Any) -> list[Any]:
    from startui.store.problems import import_problems

    if args.problems:
        if args.from_store:
            raise ValueError("give a problem file or --from-store, not both")
        report = import_problems(store, args.problems, source=args.source)
        print(report.summary(), file=sys.stderr)
        problems = store.get_problems(report.ids)
        if args.kind:
            problems = [p for p in problems if p.kind == args.kind]
        return problems[: args.limit] if args.limit else problems
    if not (args.from_store or args.source):
        raise ValueError("say which problems: a file (PROBLEMS), --from-store, or --source NAME")
    problems = store.list_problems(source=args.source, kind=args.kind, limit=args.limit)
    if not problems:
        raise ValueError("no stored problems match" + (f" source {args.source!r}"
                                                       if args.source else "")
                         + "; import some with `python -m startui import FILE`")
    return problems


def _imported(args: argparse.Namespace, store: Any) -> list[Any]:
    """:func:`_problems`, again when another worker started with the same command inserted
    the same problems at the same moment (the second insert breaks a unique key; the retry
    finds them stored)."""
    from sqlalchemy.exc import IntegrityError

    for attempt in range(3):
        try:
            return _problems(args, store)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


# --- commands --------------------------------------------------------------------------------

def cmd_generate(args: argparse.Namespace) -> int:
    from startui.infer.backends import BackendError, make_backend
    from startui.rft.generate import Batch, default_worker_name
    from startui.store import StoreError
    from startui.store.problems import ProblemImportError

    _sampling(args)
    try:
        cfg = BatchConfig(run=args.run, samples=args.samples,
                          greedy_baseline=args.greedy_baseline, concurrency=args.concurrency,
                          score=args.score, score_timeout=args.timeout,
                          worker=args.worker_name or default_worker_name(), lease=args.lease)
        hint_policy, config = policy(args), engine_config(args)
    except ValueError as e:
        return _error(str(e))
    try:
        store = _open_store(args)
    except StoreError as e:
        return _error(str(e), 2)
    with store, contextlib.ExitStack() as held:
        try:  # SQLite: one worker process at a time, told at once (PostgreSQL: any number)
            held.enter_context(store.batch_lock(cfg.worker or ""))
        except StoreError as e:
            return _error(str(e), 2)
        try:
            problems = _imported(args, store)
        except (ProblemImportError, ValueError) as e:
            return _error(str(e))
        except StoreError as e:
            return _error(str(e), 2)
        if not problems:
            return _error("no problems to run")
        bar = ProgressBar(f"generate {args.run}", enabled=not args.no_progress)

        def progress(r: BatchReport) -> None:
            scored = r.correct + r.wrong
            extra = (f"finished {r.finished} · cancelled {r.cancelled} · errors {r.errors}"
                     + (f" · correct {r.correct}/{scored}" if scored else ""))
            bar.update(r.done, r.todo, r.rate, extra)

        try:
            backend = make_backend(args.backend, args.model, **backend_options(args))
        except BackendError as e:
            return _error(str(e), 2)

        async def main() -> BatchReport:
            from startui.infer.kernels import KernelPool

            try:
                # a few warm kernels; the pool boots one for every trajectory in flight
                warm = min(cfg.concurrency, os.cpu_count() or 1)
                async with KernelPool(size=warm, timeout=args.timeout) as pool:
                    batch = Batch(store, backend, pool, cfg, policy=hint_policy,
                                  engine_config=config, on_progress=progress)
                    return await batch.run(problems, handle_signals=True)
            finally:
                await backend.close()

        try:
            report = asyncio.run(main())
        except KeyboardInterrupt:
            print("\nstopped; run the same command again to finish", file=sys.stderr)
            return INTERRUPTED
        bar.update(report.done, report.todo, report.rate, final=True)
    print(json.dumps(report.to_dict()) if args.json else report.summary())
    if report.interrupted:
        return INTERRUPTED
    return 1 if report.errors else 0


def cmd_score(args: argparse.Namespace) -> int:
    from startui.rft.select import ScoringReport, score_run

    with _runs_in_store(args, args.run) as (store, runs):
        bar = ProgressBar("score", enabled=not args.json)
        t0 = time.monotonic()

        def progress(r: ScoringReport) -> None:
            todo = r.considered - r.already_scored - r.unfinished
            bar.update(r.scored, todo, r.scored / max(1e-9, time.monotonic() - t0),
                       f"correct {r.correct} · wrong {r.wrong}")

        try:
            report = asyncio.run(score_run(store, runs, rescore=args.all,
                                           concurrency=args.concurrency, timeout=args.timeout,
                                           on_progress=progress))
        except KeyboardInterrupt:
            print("\nstopped; the scores saved so far are kept", file=sys.stderr)
            return INTERRUPTED
        if report.scored:
            todo = report.considered - report.already_scored - report.unfinished
            bar.update(report.scored, todo, report.scored / max(1e-9, time.monotonic() - t0),
                       f"correct {report.correct} · wrong {report.wrong}", final=True)
    print(json.dumps(report.to_dict()) if args.json else report.summary())
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from startui.rft.export import ExportConfig, export
    from startui.rft.select import SelectConfig, select
    from startui.store import StoreError

    try:
        filters = FilterConfig(ngram=args.ngram, max_ngram_repeats=args.max_ngram_repeats,
                               max_chars=args.max_chars, max_tokens=args.max_tokens,
                               max_tool_calls=args.max_tool_calls,
                               disabled=tuple(args.disable))
        modes = tuple(m.strip() for m in args.modes.split(",") if m.strip()) \
            if args.modes else None
        select_cfg = SelectConfig(dataset=args.dataset, per_problem=args.per_problem,
                                  require_correct=not args.keep_incorrect, modes=modes,
                                  filters=filters)
        export_cfg = ExportConfig(
            formats=tuple(f.strip() for f in args.formats.split(",") if f.strip()),
            mask_hints=args.mask_hints,
            modify=ModifyConfig(strip_human_hints=args.strip_human_hints,
                                normalize_outputs=args.normalize_outputs,
                                max_output_chars=args.max_output_chars))
    except ValueError as e:
        return _error(str(e))
    with _runs_in_store(args, args.run) as (store, runs):
        try:
            if args.dry_run:
                selection = select(store, runs, select_cfg)
                print(json.dumps(selection.report.to_dict()) if args.json
                      else selection.report.summary())
                return 0
            bar = ProgressBar("export", enabled=not args.json, every=10.0)
            t0 = time.monotonic()
            result = export(store, args.out, runs, select_config=select_cfg, config=export_cfg,
                            on_progress=lambda n, total: bar.update(
                                n, total, n / max(1e-9, time.monotonic() - t0)))
        except (StoreError, ValueError, OSError) as e:
            return _error(str(e))
    m = result.manifest
    rows = m["counts"]["rows"]
    if rows:
        bar.update(rows, rows, rows / max(1e-9, time.monotonic() - t0), final=True)
    if args.json:
        print(json.dumps(m))
        return 0
    print(result.selection.report.summary())
    files = ", ".join(m["files"]) or "nothing"
    print(f"wrote {m['counts']['rows']} rows to {Path(args.out)}/ ({files}, manifest.json); "
          f"sha256 {m['checksum']['value']}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from startui.rft import dashboard
    from startui.rft.analytics import category_table, mode_table, scaling_curve, source_table
    from startui.rft.report import write_report
    from startui.store import StoreError

    with _runs_in_store(args, args.runs) as (store, runs):
        try:  # the same figures as the app's Dataset tab, from the same code
            d = dashboard.gather(store, runs, campaign=args.campaign)
        except (StoreError, ValueError) as e:
            raise _Fail(str(e)) from e
    data = d.facts
    try:
        path = write_report(data, runs, args.html, dashboard=d)
    except OSError as e:
        return _error(f"cannot write {args.html}: {e}")
    if args.json:
        print(json.dumps({"modes": mode_table(data), "scaling": scaling_curve(data),
                          "categories": category_table(data), "sources": source_table(data),
                          "funnel": dashboard.funnel_table(d.funnel),
                          "throughput": d.throughput, "agreement": d.agreement}))
    else:
        for row in mode_table(data):
            acc = "—" if row["accuracy"] is None else f"{row['accuracy']:.1%}"
            print(f"{row['run']:<24} {row['mode']:<8} {row['trajectories']:>6} trajectories, "
                  f"accuracy {acc} ({row['scored']} scored)")
        print(f"wrote {path}")
    return 0
