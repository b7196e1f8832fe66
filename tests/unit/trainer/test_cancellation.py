"""ControlState and RunToken: control-stream events → tokens, bounded memory, deadlines."""

from __future__ import annotations

from services.trainer.cancellation import BoundedMap, ControlState, RunToken, StopReason
from tests.support.events import cancel, completed, failed

REASON = "stop it"


def test_cancel_of_a_running_training_sets_its_token_with_the_reason():
    state, token, other = ControlState(), RunToken(), RunToken()
    state.register("a", token, source="trainer:x", attempt=1)
    state.register("b", other, source="trainer:x", attempt=1)
    state.apply(cancel("a", "user asked"))
    assert token.is_cancelled() and token.reason is StopReason.USER
    assert token.detail == "user asked"
    assert not other.is_cancelled()


def test_cancel_before_the_run_is_remembered():
    state = ControlState()
    state.apply(cancel("later", REASON))
    assert state.cancel_reason("later") == REASON
    assert state.cancel_reason("unknown") is None


def test_terminal_events_are_remembered_and_supersede_a_run_of_another_attempt():
    state, mine = ControlState(), RunToken()
    state.register("a", mine, source="trainer:x", attempt=2)
    state.apply(completed("a", "trainer:x", 2))  # our own Completed echoed back: harmless
    assert not mine.is_cancelled()
    state.apply(completed("a", "trainer:y", 1))  # another attempt finished it
    assert mine.is_cancelled() and mine.reason is StopReason.SUPERSEDED
    assert state.terminal_type("a") == "Completed"
    state.apply(failed("b"))
    assert state.terminal_type("b") == "Failed"


def test_memory_is_bounded_and_forgets_the_oldest_first():
    state = ControlState(memory=100)
    for n in range(150):
        state.apply(cancel(f"t{n}", REASON))
    assert state.cancel_reason("t49") is None and state.cancel_reason("t50") == REASON
    bounded: BoundedMap[str, int] = BoundedMap(2)
    bounded.put("a", 1)
    bounded.put("b", 2)
    bounded.put("a", 3)  # refreshed: now the newest
    bounded.put("c", 4)
    assert (bounded.get("a"), bounded.get("b"), bounded.get("c"), len(bounded)) == (3, None, 4, 2)


def test_unregister_forgets_only_its_own_token():
    state, old, new = ControlState(), RunToken(), RunToken()
    state.register("a", old, source="trainer:x", attempt=1)
    state.register("a", new, source="trainer:x", attempt=2)
    state.unregister("a", old)  # a late cleanup of the old run must not drop the new one
    assert state.running_ids() == ["a"]
    state.unregister("a", new)
    assert state.running_ids() == []


def test_token_lease_and_first_reason_wins():
    now = [10.0]
    token = RunToken(deadline=12.0, clock=lambda: now[0])
    assert not token.is_cancelled()
    now[0] = 12.0
    assert token.is_cancelled() and token.reason is StopReason.LEASE
    token.cancel(StopReason.USER, "too late")
    assert token.reason is StopReason.LEASE


def test_cancel_all_stops_every_running_token():
    state, a, b = ControlState(), RunToken(), RunToken()
    state.register("a", a, source="s", attempt=1)
    state.register("b", b, source="s", attempt=1)
    state.cancel_all(StopReason.SHUTDOWN)
    assert a.reason is StopReason.SHUTDOWN and b.reason is StopReason.SHUTDOWN
