"""The selected component's config: merged (read-only) and stored (edited, applied live).

The scenarios run the real window over the real embedded hub with a real engine process;
the stored config is read and written over the hub's HTTP API, as against a remote hub.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest

from app.console import Console, open_console
from backend.client import ClientError
from tests.ui.harness import Agents, QtLoop, wait_until
from ui.components.details import StoredConfigEditor, check_config_text, refusal_text


def test_a_parse_error_names_its_line_and_column() -> None:
    checked = check_config_text('{\n  "a": 1\n  "b": 2\n}')
    assert not checked.ok
    assert checked.error == "Line 3, column 3: not valid JSON (Expecting ',' delimiter)"
    assert checked.span == (13, 14)


def test_nan_and_infinity_are_not_json_even_though_python_reads_them() -> None:
    checked = check_config_text('{"gain": NaN, "note": "NaN in a string is fine"}')
    assert checked.error == "Line 1, column 10: NaN is not JSON; use a number or null"
    assert check_config_text('{"note": "Infinity"}').ok
    assert check_config_text('{"x": -Infinity}').error is not None


def test_an_empty_editor_says_how_to_store_nothing() -> None:
    assert check_config_text("  \n").error == "Empty: type {} to store no overrides"
    assert check_config_text("{}").value == {}


def test_a_422_reads_as_the_hub_words_it() -> None:
    exc = ClientError("config of e: 422 ...", 422, [
        {"type": "dict_type", "loc": ["body"], "msg": "Input should be a valid dictionary"}])
    assert refusal_text(exc) == (
        "The hub refused it (422): Input should be a valid dictionary. Stored config is a "
        "JSON object at the top level: { \"key\": value }")
    assert refusal_text(ClientError("x", 401, "operator token required")) == \
        "The hub refused it (401): operator token required"


async def _stored_on_hub(console: Console, component_id: str) -> Any:
    token = console.host.hub.operator_token  # type: ignore[union-attr]
    async with httpx.AsyncClient(timeout=10,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        response = await client.get(f"{console.base_url}/api/v1/configs/{component_id}")
    assert response.status_code == 200, response.text
    return response.json()


def _type(editor: StoredConfigEditor, text: str) -> None:
    """Select everything in the editor and type over it, as an operator would."""
    editor.editor.setFocus()
    QTest.keySequence(editor.editor, QKeySequence.StandardKey.SelectAll)
    QTest.keyClick(editor.editor, Qt.Key.Key_Delete)
    QTest.keyClicks(editor.editor, text)


def test_edit_check_apply_and_revert_the_stored_config_of_a_live_engine(
    qt_loop: QtLoop, ui_settings: QSettings, agents: Agents, tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with open_console(tmp_path / "hub", ui_settings) as console:
            window = console.window
            await agents.spawn(console, "engine", "engine-1")
            try:
                await wait_until(lambda: console.state_of("engine-1") == "up", "engine-1 up")
            except AssertionError:
                raise AssertionError(agents.stderr_of("engine-1")) from None
            assert window.select_component("engine-1")
            details = window.details
            editor = details.stored
            await wait_until(lambda: editor.baseline is not None, "the stored config read")
            assert editor.text() == "{}"  # nothing stored yet
            assert "stored values win" in details.merged_hint.text()
            assert "null removes a key" in details.stored_hint.text()
            assert details.config.isReadOnly() and not editor.editor.isReadOnly()
            assert not editor.apply_button.isEnabled()  # nothing to apply
            assert not editor.revert_button.isEnabled()

            # A JSON error: said with its line and column, and Apply stays disabled.
            _type(editor, '{"label": "studio A" "insert_timeout_s": 1.5}')
            assert editor.status.text() == (
                "Line 1, column 22: not valid JSON (Expecting ',' delimiter)")
            assert not editor.apply_button.isEnabled()
            assert editor.revert_button.isEnabled()

            # Fixed: Apply stores it over HTTP; the hub pushes the merge to the engine.
            _type(editor, '{"label": "studio A", "insert_timeout_s": 1.5}')
            assert editor.status.text().startswith("✓ Valid JSON, not applied yet")
            assert editor.apply_button.isEnabled()
            QTest.mouseClick(editor.apply_button, Qt.MouseButton.LeftButton)
            try:
                await wait_until(lambda: editor.status.text().startswith("✓ Applied"),
                                 "the apply confirmed", within=10)
            except AssertionError:
                raise AssertionError(editor.status.text()) from None
            assert "pushed to engine-1 live" in editor.status.text()
            await wait_until(lambda: '"label": "studio A"' in details.config.toPlainText(),
                             "the merged config updated", within=10)
            merged = json.loads(details.config.toPlainText())
            assert merged["insert_timeout_s"] == 1.5 and merged["media_dir"] == "."
            assert await _stored_on_hub(console, "engine-1") == {
                "label": "studio A", "insert_timeout_s": 1.5}
            assert json.loads(editor.text()) == {"label": "studio A", "insert_timeout_s": 1.5}
            assert not editor.apply_button.isEnabled()  # applied: nothing left to apply
            assert any("engine-1 config changed; pushed to it live" in line
                       for line in window.event_log.lines())

            # null removes a key from the merge (the engine falls back to its default).
            _type(editor, '{"label": "studio A", "insert_timeout_s": null}')
            QTest.keySequence(editor.editor, QKeySequence("Ctrl+Return"))
            await wait_until(lambda: "insert_timeout_s" not in details.config.toPlainText(),
                             "the key gone from the merge", within=10)

            # Something the hub refuses: its words inline, the text kept for fixing.
            _type(editor, "[1, 2]")
            QTest.mouseClick(editor.apply_button, Qt.MouseButton.LeftButton)
            await wait_until(lambda: editor.status.text().startswith("The hub refused it"),
                             "the refusal shown", within=10)
            assert editor.status.text().startswith("The hub refused it (422): Input should "
                                                   "be a valid dictionary")
            assert "JSON object at the top level" in editor.status.text()
            assert editor.text() == "[1, 2]"
            assert window.notifications.shown() == []  # inline, not a notification
            assert await _stored_on_hub(console, "engine-1") == {
                "label": "studio A", "insert_timeout_s": None}

            # Revert: the stored overrides as the hub has them.
            QTest.mouseClick(editor.revert_button, Qt.MouseButton.LeftButton)
            assert json.loads(editor.text()) == {"label": "studio A", "insert_timeout_s": None}
            assert editor.status.text() == "The stored overrides as the hub has them."
            assert not editor.apply_button.isEnabled()

    qt_loop.run(scenario(), timeout=90)


def test_a_change_made_elsewhere_shows_up_and_never_overwrites_edits_silently(
    qt_loop: QtLoop, ui_settings: QSettings, agents: Agents, tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with open_console(tmp_path / "hub", ui_settings) as console:
            window = console.window
            await agents.spawn(console, "engine", "engine-1")
            await wait_until(lambda: console.state_of("engine-1") == "up", "engine-1 up")
            assert window.select_component("engine-1")
            editor = window.details.stored
            await wait_until(lambda: editor.baseline is not None, "the stored config read")
            headers = {"Authorization": f"Bearer {console.host.hub.operator_token}"}

            async def put(config: dict[str, Any]) -> None:
                async with httpx.AsyncClient(timeout=10, headers=headers) as client:
                    response = await client.put(
                        f"{console.base_url}/api/v1/configs/engine-1", json=config)
                assert response.status_code == 200, response.text

            # No edits: another client's change simply appears.
            await put({"label": "from a script"})
            await wait_until(lambda: "from a script" in editor.text(), "the new stored config")
            await wait_until(lambda: "from a script" in window.details.config.toPlainText(),
                             "the new merge")

            # With edits under way: they are kept, and the operator is told.
            _type(editor, '{"label": "mine"}')
            await put({"label": "theirs"})
            await wait_until(lambda: "changed on the hub while you were editing"
                             in editor.status.text(), "the warning")
            assert editor.text() == '{"label": "mine"}'
            assert editor.apply_button.isEnabled()
            QTest.mouseClick(editor.revert_button, Qt.MouseButton.LeftButton)
            assert json.loads(editor.text()) == {"label": "theirs"}

            # Edits survive selecting something else (the group row) and coming back.
            _type(editor, '{"label": "draft"}')
            group = window.proxy.mapFromSource(window.model.group_index("engine"))
            window.tree.setCurrentIndex(group)
            assert window.details.component_id is None
            assert window.select_component("engine-1")
            await wait_until(lambda: editor.baseline is not None, "read again")
            assert editor.text() == '{"label": "draft"}' and editor.dirty()

    qt_loop.run(scenario(), timeout=90)
