"""The one resource check: what fits, and the reason when something does not."""

from __future__ import annotations

from backend.runner.resources import own_labels, reserve, shortfall

FREE = {"cpus": 4.0, "memory_mb": 8000.0, "disk_mb": 50_000.0, "gpus": 0.0}


def test_a_job_within_free_resources_and_labels_fits() -> None:
    needs = {"cpus": 4, "memory_mb": 8000, "labels": ["linux"]}
    assert shortfall(needs, FREE, ["linux", "fast"]) is None


def test_missing_labels_are_named() -> None:
    assert shortfall({"labels": ["gpu", "cuda"]}, FREE, ["linux"]) == "lacks labels cuda, gpu"


def test_each_quantity_says_how_much_is_wanted_and_free() -> None:
    assert shortfall({"cpus": 8}, FREE, []) == "needs 8 CPUs, 4 free"
    assert shortfall({"memory_mb": 9000}, FREE, []) == "needs 9000 MB memory, 8000 free"
    assert shortfall({"disk_mb": 60_000}, FREE, []) == "needs 60000 MB disk, 50000 free"
    assert shortfall({"gpus": 1}, FREE, []) == "needs 1 GPUs, 0 free"


def test_missing_needs_count_as_none() -> None:
    assert shortfall({}, {}, []) is None


def test_reserve_takes_the_share_of_a_job() -> None:
    left = reserve(FREE, {"cpus": 1.5, "memory_mb": 1000})
    assert left["cpus"] == 2.5 and left["memory_mb"] == 7000 and left["gpus"] == 0
    assert shortfall({"cpus": 3}, left, []) == "needs 3 CPUs, 2.5 free"


def test_a_runner_carries_its_own_name_as_a_label_and_no_one_else_s() -> None:
    labels = own_labels("r2", ["gpu", "runner.r1"])  # a configured runner. label is ignored
    assert labels == ["gpu", "runner.r2"]
    assert shortfall({"labels": ["runner.r2"]}, {}, labels) is None
    assert shortfall({"labels": ["runner.r1"]}, {}, labels) == "lacks label runner.r1"
