"""Progress lines in a job's output, whatever way the output is cut into reads."""

from __future__ import annotations

from backend.runner.progress import ProgressParser


def test_the_last_progress_line_wins_and_split_lines_are_joined() -> None:
    parser = ProgressParser()
    assert parser.feed(b"starting\nprogress 0.1\nprog") == 0.1
    assert parser.feed(b"ress 0.42\n") == 0.42
    assert parser.offset == len(b"starting\nprogress 0.1\nprogress 0.42\n")


def test_percent_and_out_of_range_values() -> None:
    parser = ProgressParser()
    assert parser.feed(b"progress 50%\n") == 0.5
    assert parser.feed(b"progress 7\n") == 1.0


def test_other_lines_are_not_progress() -> None:
    parser = ProgressParser()
    assert parser.feed(b"no progress 0.5 here\nprogress abc\n") is None
