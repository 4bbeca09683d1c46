"""Names for agents the console spawns: never one another machine's agent holds at the hub."""

from __future__ import annotations

from pathlib import Path

from backend.supervisor import Supervisor


async def _no_enrollment(kind: str) -> str:
    raise AssertionError("naming must not enroll anything")


def test_names_the_hub_knows_are_skipped_unless_they_are_ours(tmp_path: Path) -> None:
    hub_knows = ["engine-1", "engine-3", "driver-1", "runner-1"]
    supervisor = Supervisor("http://studio:8750", tmp_path, _no_enrollment,
                            registered=lambda: hub_knows)
    assert supervisor.next_names("engine", 2) == ["engine-2", "engine-4"]
    assert supervisor.next_name("driver") == "driver-2"
    # engine-1 at the hub is this console's own agent from an earlier run: it comes back
    (tmp_path / "engine-1").mkdir()
    (tmp_path / "engine-1" / "credentials.json").write_text("{}")
    assert supervisor.next_name("engine") == "engine-1"


def test_without_a_hub_list_the_first_free_local_name_is_taken(tmp_path: Path) -> None:
    supervisor = Supervisor("http://127.0.0.1:8750", tmp_path, _no_enrollment)
    assert supervisor.next_names("driver", 3) == ["driver-1", "driver-2", "driver-3"]
