from __future__ import annotations

import asyncio
import functools
import os
import uuid

import pytest
from sqlalchemy import create_engine

from startui.infer.backends.scripted import ScriptedBackend
from startui.infer.engine import Engine, EngineConfig
from startui.infer.hints import HintPolicy

os.environ["HF_HUB_OFFLINE"] = "1"  # no model hub is reachable: never wait for one
# CI sets STARTUI_STRICT=1: there every part must start (PostgreSQL, Chromium, torch), so a test
# that would skip because one is missing fails instead.
STRICT = bool(os.environ.get("STARTUI_STRICT"))


def _strict(report: pytest.TestReport | pytest.CollectReport) -> None:
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, but STARTUI_STRICT is set (CI runs all): {report.longrepr}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _strict(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _strict(outcome.get_result())


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Every test gets its own database and cache, never the user's."""
    monkeypatch.setenv("STARTUI_DB_URL", f"sqlite:///{tmp_path / 'startui.sqlite'}")
    if "STARTUI_CACHE" not in os.environ:  # the assembled model is shared: it is 1.1 GB
        monkeypatch.setenv("STARTUI_CACHE", os.path.expanduser("~/.cache/startui"))


@pytest.fixture(scope="session")
async def llama():
    """The embedded model, loaded once for every test that needs it (1.8 GB, ~3 s to load)."""
    from startui.infer.backends.llamacpp import LlamaCppBackend

    b = LlamaCppBackend(n_ctx=4096)
    await asyncio.to_thread(b.load)
    yield b
    await b.close()


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A tiny Qwen2 and a locally trained tokenizer, saved for ``from_pretrained``."""
    from bench.standins import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
async def pool():
    from startui.infer.kernels import KernelPool

    async with KernelPool(size=2, timeout=10) as p:
        yield p


@pytest.fixture
def make_engine(pool):
    def make(turns, *, rounds=0, conjunction_p=0.0, seed=0, delay=0.0, **config):
        backend = ScriptedBackend(turns, delay=delay)
        policy = HintPolicy(rounds=rounds, conjunction_p=conjunction_p, seed=seed)
        return Engine(backend, pool, policy, EngineConfig(**config))

    return make


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, one per test module (tests/browser.py says how it starts)."""
    from playwright.sync_api import sync_playwright

    from tests.browser import ARGS, CHROMIUM

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


# --- databases: SQLite and a fresh PostgreSQL database per test ---------------------------

DEFAULT_PG = "postgresql+psycopg://startui:startui@localhost:5432/startui_test"  # .ci/postgres.sh


@functools.cache
def _pg_admin_url() -> tuple[str, str | None]:
    """(url, why it is unusable or None)."""
    url = os.environ.get("STARTUI_TEST_PG_URL") or DEFAULT_PG
    try:
        eng = create_engine(url, connect_args={"connect_timeout": 3})
        with eng.connect():
            pass
        eng.dispose()
        return url, None
    except Exception as e:  # noqa: BLE001 - any failure means "no server here"
        return url, f"{type(e).__name__}: {e}".splitlines()[0]


@pytest.fixture
def pg_url():
    """A fresh, empty PostgreSQL database for one test (dropped after it). Skips when no server
    runs locally; fails when STARTUI_TEST_PG_URL names one that cannot be reached, or when
    STARTUI_STRICT is set (CI: the postgres tests must run)."""
    admin, error = _pg_admin_url()
    required = os.environ.get("STARTUI_TEST_PG_URL") or os.environ.get("STARTUI_STRICT")
    if error and required:
        pytest.fail(f"PostgreSQL is required here but unusable: {error}")
    if error:
        pytest.skip("no PostgreSQL server: set STARTUI_TEST_PG_URL, or run "
                    "`eval \"$(.ci/postgres.sh)\"` to install and start one")
    name = f"startui_t_{uuid.uuid4().hex[:10]}"
    eng = create_engine(admin, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield admin.rsplit("/", 1)[0] + "/" + name
    with eng.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    eng.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request, tmp_path):
    """A store's URL, once SQLite (a file in the test's folder), once a fresh PostgreSQL
    database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    return request.getfixturevalue("pg_url")
