"""`startui review` and `startui users`: what a team scripts before people review the rest."""

from __future__ import annotations

import io
import json

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
