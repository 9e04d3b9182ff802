"""`startui review` and `startui users`: what a team scripts before people review the rest."""

from __future__ import annotations

import io
import json
import sqlite3

import pytest

from startui.cli import main
from startui.store import Store
from tests.test_review import make


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    with Store(url) as store:
        ids = [make(store, i, correct=i < 2) for i in range(3)]
    return url, ids


def test_list_then_accept_by_rule_then_by_id(db, capsys, monkeypatch):
    url, ids = db
    monkeypatch.setenv("STARTUI_REVIEWER", "ann")
    assert main(["review", "list", "--db", url, "--verdict", "correct", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {i["id"] for i in listed["items"]} == set(ids[:2]) and listed["counts"]["pending"] == 2
    assert main(["review", "accept", "--run", "r1", "--verdict", "correct", "--db", url]) == 0
    assert "accepted 2 trajectories of r1" in capsys.readouterr().out
    assert main(["review", "reject", ids[2], "--score", "1", "--label", "flawed reasoning",
                 "--comment", "guessed", "--db", url]) == 0
    with Store(url) as store:
        assert [store.trajectory_summary(t).review_status for t in ids] == [
            "accepted", "accepted", "rejected"]
        (review,) = store.list_reviews(ids[2])
        assert (review.reviewer, review.score, review.labels) == ("ann", 1.0,
                                                                  ["flawed reasoning"])
    assert main(["review", "undo", "--db", url]) == 0
    assert f"undid rejected of {ids[2]}" in capsys.readouterr().out


def test_bad_input_is_one_clear_line(db, capsys):
    url, ids = db
    assert main(["review", "accept", "nope", "--db", url]) == 1
    assert "no trajectory 'nope'" in capsys.readouterr().err
    assert main(["review", "accept", ids[0], "--label", "shiny", "--db", url]) == 1
    assert "unknown label 'shiny'" in capsys.readouterr().err
    assert main(["review", "accept", "--run", "nope", "--verdict", "correct", "--db", url]) == 1
    assert "unknown run 'nope'" in capsys.readouterr().err


def test_users_add_list_role_remove(db, capsys, monkeypatch):
    url, ids = db
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret\n"))
    assert main(["users", "add", "ann", "--role", "admin", "--password-stdin", "--db", url]) == 0
    assert main(["users", "add", "vic", "--role", "viewer", "--no-password", "--db", url]) == 0
    assert main(["users", "list", "--json", "--db", url]) == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert {(u["name"], u["role"], u["has_password"]) for u in json.loads(out)} == {
        ("ann", "admin", True), ("vic", "viewer", False)}
    assert main(["review", "accept", ids[0], "--reviewer", "vic", "--db", url]) == 1
    assert "vic is a viewer" in capsys.readouterr().err
    assert main(["users", "role", "vic", "reviewer", "--db", url]) == 0
    assert main(["review", "accept", ids[0], "--reviewer", "vic", "--db", url]) == 0
    assert main(["users", "remove", "vic", "--db", url]) == 0
    assert main(["users", "remove", "vic", "--db", url]) == 1


def test_one_bad_id_does_not_stop_the_others(db, capsys):
    url, ids = db
    assert main(["review", "skip", ids[0], "nope", ids[1], "--db", url]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == "error: nope: no trajectory 'nope' in the store"
    assert f"{ids[0]} skipped" in captured.out and f"{ids[1]} skipped" in captured.out
    with Store(url) as store:
        assert [store.trajectory_summary(t).review_status for t in ids] == [
            "skipped", "skipped", "pending"]


async def test_a_stale_output_blocks_accept_until_a_reason_is_given(db, pool, capsys):
    from startui.review import edits

    url, ids = db
    with Store(url) as store:
        traj, v = store.load_trajectory_versioned(ids[0])
        await edits.save_edit(store, pool, ids[0], edits.set_text(traj.segments, 1, "print(5)"),
                              expected_version=v, editor="ann")
    assert main(["review", "accept", ids[0], "--db", url]) == 1
    assert "no longer matches its code" in capsys.readouterr().err
    assert main(["review", "accept", ids[0], "--reason", "the check is cosmetic", "--db", url]) == 0
    with Store(url) as store:
        (review,) = store.list_reviews(ids[0])
        assert review.detail["stale_override"] == "the check is cosmetic"


def test_a_database_problem_is_exit_2_on_one_line(capsys):
    url = "postgresql+psycopg://nobody@127.0.0.1:1/nothing"
    assert main(["review", "list", "--db", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot open database") and err.count("\n") == 1
    assert main(["users", "list", "--db", url]) == 2


def test_nothing_to_undo_and_bad_limits_are_bad_input(db, capsys):
    url, _ = db
    assert main(["review", "undo", "--reviewer", "zed", "--db", url]) == 1
    assert "zed has no decision left to undo" in capsys.readouterr().err
    assert main(["review", "list", "--limit", "0", "--db", url]) == 1
    assert main(["review", "list", "--status", "bogus", "--db", url]) == 1
    assert "review status must be one of" in capsys.readouterr().err


def test_passwords_from_the_command_line_are_hashed_and_never_empty(db, capsys, monkeypatch):
    url, _ = db
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert main(["users", "add", "ann", "--password-stdin", "--db", url]) == 1
    assert "empty password" in capsys.readouterr().err
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "tr0ub4dor")
    assert main(["users", "add", "ann", "--role", "admin", "--db", url]) == 0
    assert "added ann: admin, with a password" in capsys.readouterr().out
    with Store(url) as store:
        assert store.password_hash_of("ann").startswith("scrypt$")
    dump = "\n".join(sqlite3.connect(url.removeprefix("sqlite:///")).iterdump())
    assert "tr0ub4dor" not in dump
    answers = iter(["one", "two"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["users", "add", "bob", "--db", url]) == 1
    assert "the passwords differ" in capsys.readouterr().err
    assert main(["users", "role", "ann", "--db", url]) == 1
