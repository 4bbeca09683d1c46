"""Config merge: stored over static, deep, stored wins, null removes."""

from backend.hub.merge import deep_merge


def test_stored_wins_on_scalars() -> None:
    assert deep_merge({"a": 1, "b": 2}, {"b": 3}) == {"a": 1, "b": 3}


def test_objects_merge_recursively() -> None:
    static = {"audio": {"rate": 48000, "block": 1024}, "name": "x"}
    stored = {"audio": {"block": 512, "dither": True}}
    assert deep_merge(static, stored) == {
        "audio": {"rate": 48000, "block": 512, "dither": True}, "name": "x",
    }


def test_lists_are_replaced_not_concatenated() -> None:
    assert deep_merge({"ids": [1, 2]}, {"ids": [3]}) == {"ids": [3]}


def test_object_replaces_scalar_and_scalar_replaces_object() -> None:
    assert deep_merge({"a": 1, "b": {"x": 1}}, {"a": {"y": 2}, "b": 5}) == {"a": {"y": 2}, "b": 5}


def test_null_removes_a_key() -> None:
    assert deep_merge({"a": 1, "b": {"c": 1, "d": 2}}, {"a": None, "b": {"c": None}}) == {
        "b": {"d": 2}
    }


def test_inputs_are_not_modified() -> None:
    static = {"a": {"b": [1]}}
    stored = {"a": {"c": {"d": 1}}}
    merged = deep_merge(static, stored)
    merged["a"]["b"].append(2)
    merged["a"]["c"]["d"] = 9
    assert static == {"a": {"b": [1]}} and stored == {"a": {"c": {"d": 1}}}


def test_empty_stored_returns_static() -> None:
    assert deep_merge({"a": 1}, {}) == {"a": 1}
