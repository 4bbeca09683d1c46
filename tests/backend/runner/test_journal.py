"""The runner's job journal: numbered reports, acknowledgements, replay after a crash."""

from __future__ import annotations

import json
from pathlib import Path

from backend.runner.journal import Journal, open_journals, replay


def test_reports_are_numbered_and_survive_reopening(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path, "j_1", {"kind": "command", "payload": {"argv": ["x"]}})
    journal.append("accepted", 1.0)
    journal.append("started", 2.0)
    journal.append("progress", 3.0, progress=0.5)
    again = Journal(tmp_path / "j_1")
    assert [e["seq"] for e in again.events] == [1, 2, 3]
    assert again.offer["payload"] == {"argv": ["x"]}
    assert again.last_seq == 3 and again.acked == 0


def test_acknowledged_reports_are_not_resent_and_the_ack_is_durable(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path, "j_1", {})
    for event in ("accepted", "started", "progress"):
        journal.append(event, 0.0)
    journal.ack(2)
    journal.ack(1)  # an older ack never moves it back
    assert [e["seq"] for e in journal.unacked()] == [3]
    assert Journal(tmp_path / "j_1").acked == 2


def test_finished_only_when_the_end_is_acknowledged_then_archived(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path / "jobs", "j_1", {})
    journal.append("accepted", 0.0)
    journal.append("ended", 1.0, state="succeeded", exit_code=0)
    assert not journal.finished
    journal.ack(2)
    assert journal.finished
    journal.archive(tmp_path / "archive")
    assert (tmp_path / "archive" / "j_1" / "events.jsonl").exists()
    assert open_journals(tmp_path / "jobs") == []


def test_replay_ignores_a_torn_last_line_and_out_of_order_entries() -> None:
    lines = [json.dumps({"seq": 1, "event": "accepted", "ts": 0}),
             json.dumps({"seq": 2, "event": "progress", "ts": 1, "progress": 0.3}),
             json.dumps({"seq": 5, "event": "progress", "ts": 2, "progress": 0.9}),
             '{"seq": 3, "event": "ended", "ts"']
    state = replay(lines)
    assert state.last_seq == 2 and state.progress == 0.3 and state.ended is None


def test_a_torn_line_is_overwritten_by_the_next_report(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path, "j_1", {})
    journal.append("accepted", 0.0)
    with (tmp_path / "j_1" / "events.jsonl").open("a") as handle:
        handle.write('{"seq": 2, "ev')  # the runner died mid-write
    reopened = Journal(tmp_path / "j_1")
    assert reopened.last_seq == 1
    reopened.append("started", 1.0)
    assert [e["seq"] for e in Journal(tmp_path / "j_1").events] == [1, 2]
