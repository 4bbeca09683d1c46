"""The follower's rules, with plain values: no sockets, no clock."""

from __future__ import annotations

import pytest

from backend.client import Follower, GiveUp, Rebase, Record, Reopen, SseParser


def feed(parser: SseParser, text: str) -> list[Record]:
    out = []
    for line in text.split("\n"):
        record = parser.feed(line)
        if record is not None:
            out.append(record)
    return out


def test_parser_reads_records_and_skips_comments() -> None:
    parser = SseParser()
    records = feed(parser, ': keep-alive\n\nid: 3\nevent: job.report\ndata: {"a": 1}\n\n'
                           'data: [2]\n\n')
    assert records == [Record(3, "job.report", {"a": 1}), Record(0, "message", [2])]


def test_parser_drops_a_record_without_data_and_keeps_colons_in_values() -> None:
    parser = SseParser()
    assert feed(parser, "id: 4\nevent: x\n\n") == []
    assert feed(parser, 'id:5\ndata: {"url": "http://h:1"}\n\n') == [
        Record(5, "message", {"url": "http://h:1"})]


def test_parser_takes_text_in_pieces_of_any_size() -> None:
    text = ': hi\n\nid: 1\nevent: a\ndata: {"x": "é"}\n\nid: 2\r\ndata: 2\r\n\r\n'
    whole = SseParser().feed_text(text)
    assert whole == [Record(1, "a", {"x": "é"}), Record(2, "message", 2)]
    for size in (1, 2, 3, 7):
        parser = SseParser()
        pieces = [text[i:i + size] for i in range(0, len(text), size)]
        assert [r for piece in pieces for r in parser.feed_text(piece)] == whole


def test_resume_header_follows_the_last_record() -> None:
    follower = Follower(7)
    assert follower.headers() == {"Last-Event-ID": "7"}
    assert follower.received(Record(8, "e", {}), now=1.0)
    assert follower.headers() == {"Last-Event-ID": "8"}


def test_repeats_are_skipped_after_a_resume() -> None:
    follower = Follower(0)
    seen = [r.id for r in (Record(i, "e", {}) for i in (1, 2, 3, 2, 3, 4, 1))
            if follower.received(r, now=0.0)]
    assert seen == [1, 2, 3, 4]
    assert follower.last_id == 4


def test_a_terminal_record_is_delivered_though_it_does_not_advance() -> None:
    follower = Follower(0, terminal=frozenset({"end"}))
    assert follower.received(Record(100, "output", {}), now=0.0)
    assert follower.received(Record(100, "end", {}), now=0.0)
    assert follower.last_id == 100


def test_backoff_doubles_to_its_cap_and_resets_on_progress() -> None:
    follower = Follower(0, first_delay_s=0.1, max_delay_s=0.5)
    delays = [follower.failed(now=0.0) for _ in range(5)]
    assert [d.delay_s for d in delays if isinstance(d, Reopen)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    follower.received(Record(1, "e", {}), now=1.0)
    assert follower.failed(now=1.0) == Reopen(0.1, 1)


def test_gives_up_only_after_its_patience_without_progress() -> None:
    follower = Follower(3, now=100.0, patience_s=10.0)
    assert isinstance(follower.failed(now=105.0), Reopen)
    assert isinstance(follower.failed(now=110.0), Reopen)
    decision = follower.failed(now=110.5)
    assert decision == GiveUp(3, pytest.approx(10.5))
    follower.received(Record(4, "e", {}), now=111.0)  # progress restores the patience
    assert isinstance(follower.failed(now=120.0), Reopen)


def test_never_gives_up_without_patience() -> None:
    follower = Follower(0)
    assert isinstance(follower.failed(now=1e9), Reopen)


def test_rebase_after_a_short_cut_resumes_where_it_was() -> None:
    follower = Follower(500)
    assert follower.rebase(900, backlog=200, catch_up=1000) is None
    assert follower.last_id == 500


def test_rebase_after_a_long_cut_skips_all_but_the_newest() -> None:
    follower = Follower(500)
    assert follower.rebase(5000, backlog=200, catch_up=1000) == Rebase(4000, 3500)
    assert follower.last_id == 4000


def test_rebase_on_a_restarted_log_shows_its_recent_history() -> None:
    follower = Follower(5000)
    assert follower.rebase(300, backlog=200, catch_up=1000) == Rebase(100, 0, restarted=True)
    assert Follower(5000).rebase(50, backlog=200, catch_up=1000) == Rebase(0, 0, True)
