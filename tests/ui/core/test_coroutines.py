"""What an action's failure says to the operator (:class:`ui.core.coroutines.CoroutineRunner`)."""

from __future__ import annotations

from backend.diskspace import StorageFull
from tests.ui.harness import QtLoop
from tests.ui.harness import wait_until as loop_wait_until
from ui.core.coroutines import CoroutineRunner


def test_an_error_raised_on_purpose_reads_as_its_sentence_and_a_bug_names_its_type(
        qt_loop: QtLoop) -> None:
    failures: list[tuple[str, str]] = []

    async def full() -> None:
        raise StorageFull("the folder the render is saved to", "/media/usb")

    async def bug() -> None:
        raise ValueError("boom")

    async def scenario() -> None:
        runner = CoroutineRunner()
        runner.failed.connect(lambda what, message: failures.append((what, message)))
        runner.run("Save mix.wav", full())
        runner.run("Something", bug())
        await loop_wait_until(lambda: len(failures) == 2, "both to fail")

    qt_loop.run(scenario(), timeout=10)
    assert sorted(failures) == [
        ("Save mix.wav", "the folder the render is saved to is full: no space left at "
                         "/media/usb; free space at /media/usb and try again"),
        ("Something", "ValueError: boom")]
