"""Hardware inventory: collected with psutil, cached, and sent whole or as a change."""

from __future__ import annotations

from pathlib import Path

from backend.runner import inventory


def test_collect_reports_cpu_memory_disks_os_and_no_gpus_without_nvidia_smi(
        tmp_path: Path) -> None:
    found = inventory.collect(tmp_path)
    assert found["cpu"]["threads"] >= 1 and found["cpu"]["model"]
    assert found["memory"]["total_mb"] > 0
    assert found["work_disk"]["total_mb"] > 0
    assert found["os"]["system"]
    assert found["gpus"] == inventory.gpus()


def test_gpus_is_empty_when_the_tool_is_absent() -> None:
    assert inventory.gpus("no-such-tool-nvidia-smi") == []


def test_diff_names_changed_and_removed_keys_and_patch_applies_it() -> None:
    old = {"cpu": {"cores": 4}, "memory": {"total_mb": 8000}, "gpus": []}
    new = {"cpu": {"cores": 8}, "memory": {"total_mb": 8000}, "os": {"system": "Linux"}}
    changed, removed = inventory.diff(old, new)
    assert changed == {"cpu": {"cores": 8}, "os": {"system": "Linux"}}
    assert removed == ["gpus"]
    assert inventory.patch(old, changed, removed) == new
    assert inventory.diff(new, new) == ({}, [])


def test_digest_is_independent_of_key_order() -> None:
    assert inventory.digest({"a": 1, "b": [1, 2]}) == inventory.digest({"b": [1, 2], "a": 1})
    assert inventory.digest({"a": 1}) != inventory.digest({"a": 2})


def test_cache_round_trip_and_a_missing_or_broken_cache_is_none(tmp_path: Path) -> None:
    assert inventory.load_cache(tmp_path) is None
    inventory.save_cache(tmp_path, {"cpu": {"cores": 2}})
    assert inventory.load_cache(tmp_path) == {"cpu": {"cores": 2}}
    (tmp_path / inventory.CACHE).write_text("{not json")
    assert inventory.load_cache(tmp_path) is None
