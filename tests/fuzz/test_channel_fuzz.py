"""The agent channel under fuzzing: one hub, a healthy engine and driver, and Hypothesis.

The short CI run (a fixed seed, printed) of :class:`fuzzing.ChannelMachine`, then a burst
of connects and disconnects; the hub must stay up, answer every step, keep checking its
healthy agents on time (no false down) and come back to its memory baseline. The plain
tests below it each reproduce one failure the fuzzer found, without Hypothesis.
``benchmarks/fuzz_channel.py`` is the long run.
"""

from __future__ import annotations

import json
import time

from fuzzing import (
    HEALTHY,
    ChannelMachine,
    Conn,
    FuzzHub,
    Mutant,
    Watch,
    burst,
    drain,
    false_downs,
    mutated,
    open_conn,
    rss_mb,
    tracebacks,
)
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.stateful import run_state_machine_as_test
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from backend.protocol import closecodes

#: The CI run's seed; ``benchmarks/fuzz_channel.py --seed N`` replays any other.
CI_SEED = 20261204
CI_EXAMPLES, CI_STEPS, CI_BURST = 4, 10, 500


def _close_of(url: str, *frames: str | bytes) -> tuple[int | None, str]:
    with connect(url, max_size=None, open_timeout=10) as ws:
        try:
            for frame in frames:
                ws.send(frame)
            while True:
                ws.recv(timeout=10)
        except ConnectionClosed as closed:
            return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (None, "")
    raise AssertionError("not closed")


def test_the_agent_channel_holds_under_fuzzing(fuzz_hub: FuzzHub) -> None:
    fuzz, hub = fuzz_hub.fuzz, fuzz_hub.hub
    assert hub.proc is not None
    print(f"hypothesis seed {CI_SEED} (replay: benchmarks/fuzz_channel.py --seed {CI_SEED})")
    mark, log_at = fuzz_hub.last_event(), fuzz_hub.log.stat().st_size
    started = time.monotonic()
    with Watch(hub.url, hub.token, HEALTHY) as watch:
        run_state_machine_as_test(
            seed(CI_SEED)(lambda: ChannelMachine(fuzz)),
            settings=settings(max_examples=CI_EXAMPLES, stateful_step_count=CI_STEPS,
                              deadline=None, database=None, print_blob=True,
                              suppress_health_check=list(HealthCheck),
                              phases=(Phase.explicit, Phase.generate)),
        )
        fuzzed_s = time.monotonic() - started
        burst(fuzz, 100)  # warm up what every connection allocates once
        time.sleep(1.0)
        baseline = rss_mb(hub.proc.pid)
        welcomed = burst(fuzz, CI_BURST)
        time.sleep(1.0)  # the last connections' down events and closes settle
        after = rss_mb(hub.proc.pid)
    print(f"{fuzz.cases} cases in {fuzzed_s:.1f} s; burst of {CI_BURST} "
          f"({welcomed} welcomed); hub RSS {baseline:.1f} -> {after:.1f} MiB; "
          f"healthy agents' lateness {watch.late_s} over {watch.samples} samples")
    assert not fuzz.failures, fuzz.failures[:5]
    assert welcomed > 0
    assert after - baseline < 30, f"hub RSS grew {after - baseline:.1f} MiB over the burst"
    assert not watch.errors, watch.errors[:3]
    assert watch.samples > 10
    for name in HEALTHY:
        assert watch.states[name] == {"up"}, (name, watch.states[name])
        # Checks go out every second; answered within a generous bound on a busy machine.
        assert watch.late_s[name] < 2.0, (name, watch.late_s[name])
    assert false_downs(hub.events(after=mark, idle=0.3), HEALTHY, mark) == []
    assert tracebacks(fuzz_hub.log, log_at) == []
    fuzz.healthy()


def test_every_mutation_gets_the_close_code_it_calls_for(fuzz_hub: FuzzHub) -> None:
    """Mutations one by one on a registered connection (it reconnects with its saved
    credentials after each close): the state machine's runs are short in CI, so this is
    where every kind of broken message is sure to be tried."""
    fuzz = fuzz_hub.fuzz
    log_at = fuzz_hub.log.stat().st_size
    conn, welcome = open_conn(fuzz, "fz-mutant", "engine", "token")
    assert welcome is not None
    conn.ws.close()
    print(f"hypothesis seed {CI_SEED}")

    @seed(CI_SEED)
    @settings(max_examples=80, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), phases=(Phase.explicit, Phase.generate))
    @given(mutant=mutated())
    def run(mutant: Mutant) -> None:
        conn, welcome = open_conn(fuzz, "fz-mutant", "engine", "credentials")
        assert welcome is not None, (conn.closed, conn.reason)
        conn.ws.send(mutant.frame)
        fuzz.cases += 1
        drain(conn, 5)
        conn.ws.close()
        assert conn.closed in mutant.expect, (mutant.what, mutant.frame[:300], conn.closed,
                                              conn.reason)

    run()
    assert tracebacks(fuzz_hub.log, log_at) == []
    fuzz.healthy()


# -- each failure the fuzzer found, reproduced without it ---------------------------------


def test_a_valid_hello_passes_while_its_address_is_throttled(fuzz_hub: FuzzHub) -> None:
    """Found: the channel asked the throttle before checking the credential, so after 20
    bad hellos from 127.0.0.1 (the limit) a healthy local agent reconnecting was refused
    1013 for the rest of the minute; the HTTP routes and docs/security.md say a valid
    credential is checked first and never refused."""
    fuzz = fuzz_hub.fuzz
    codes = [_close_of(fuzz.ws_url, json.dumps({
        "type": "hello", "kind": "engine", "name": "fz-guess", "enroll_token": f"cre_x{i}"}))[0]
        for i in range(21)]
    assert set(codes) <= {closecodes.AUTH_FAILED, closecodes.TRY_AGAIN_LATER}
    assert codes[-1] == closecodes.TRY_AGAIN_LATER
    conn, welcome = open_conn(fuzz, "fz-throttled", "engine", "token")
    assert welcome is not None, (conn.closed, conn.reason)
    conn.ws.close()
    conn, welcome = open_conn(fuzz, "fz-throttled", "engine", "credentials")
    assert welcome is not None, (conn.closed, conn.reason)
    conn.ws.close()
    # Wrong credentials stay refused, as "try again later", uncounted.
    assert _close_of(fuzz.ws_url, json.dumps({
        "type": "hello", "kind": "engine", "name": "fz-guess",
        "agent_id": "ag_nobody", "secret": "crs_nope"}))[0] == closecodes.TRY_AGAIN_LATER


def test_deep_nesting_is_refused_with_a_reason_not_a_crash(fuzz_hub: FuzzHub) -> None:
    """Found: ``[[[[...`` as a first frame made the hub's JSON decoder raise
    RecursionError, and a hello whose config nested 900 deep (with a valid token) broke
    the config merge's deep copy: both connections died with no close frame and a
    traceback in the hub's log, and the token was spent."""
    fuzz, log_at = fuzz_hub.fuzz, fuzz_hub.log.stat().st_size
    assert _close_of(fuzz.ws_url, "[" * 100_000) == (
        closecodes.INVALID_MESSAGE, "message nested deeper than 64 levels")
    deep = json.loads('{"a":' * 900 + "1" + "}" * 900)
    hello = {"type": "hello", "kind": "engine", "name": "fz-deep",
             "enroll_token": fuzz.enroll("engine"), "config": deep}
    assert _close_of(fuzz.ws_url, json.dumps(hello))[0] == closecodes.INVALID_MESSAGE
    conn, welcome = open_conn(fuzz, "fz-deep", "engine", "token")
    assert welcome is not None
    conn.ws.send(json.dumps({"type": "report", "components": [deep]}))
    assert _drained_close(conn) == closecodes.INVALID_MESSAGE
    assert tracebacks(fuzz_hub.log, log_at) == []
    fuzz.healthy()


def test_nan_and_infinity_are_refused(fuzz_hub: FuzzHub) -> None:
    """Found: Python's json reads ``NaN`` and ``1e999`` (as infinity); a report holding
    one was kept and put into the event stream as ``NaN``, which is not JSON, so a
    browser or any strict client of ``GET /api/v1/events`` failed on it."""
    fuzz = fuzz_hub.fuzz
    for number, words in (("NaN", "NaN is not a JSON number"),
                          ("1e999", "out of range for a number")):
        conn, welcome = open_conn(fuzz, "fz-nan", "engine", "token")
        assert welcome is not None
        conn.ws.send('{"type": "report", "components": [{"x": ' + number + "}]}")
        assert _drained_close(conn) == closecodes.INVALID_MESSAGE
        assert words in conn.reason
    answer = fuzz_hub.hub.client.get(f"{fuzz.url}/api/v1/components/fz-nan")
    assert answer.status_code == 200 and answer.json()["report"] is None


def _drained_close(conn: Conn) -> int | None:
    drain(conn, 10)
    return conn.closed
