"""The CLI's views, rendered at a fixed terminal width: `watch`'s final screen agrees with the
outcome, Ctrl-C on `watch` detaches (exit 4, the training goes on), `watch` gives up on a gone
server after backing off, `list` fits 80 columns, flags are shown as flags, one device
vocabulary, `strategies list|validate`, and warnings before training."""

from __future__ import annotations

import io
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from libs.events import catalog as ev
from services.cli.app import app
from services.cli.client.http import ApiClient, ApiError
from services.cli.client.ids import resolve_id
from services.cli.client.sse import BACKOFF_S, follow
from services.cli.client.tables import trainings_table
from services.cli.client.watch import EXIT_DETACHED, WatchDisplay
from services.cli.commands import client as client_commands
from tests.support.events import PHASES, TrainingScript

REPO = Path(__file__).resolve().parents[3]
STRATEGIES = REPO / "strategies"
WIDTH = 100
_TRAINING = PHASES.index("training")


def screen(events: list[ev.Event], width: int = WIDTH) -> tuple[str, WatchDisplay]:
    """The lines `ktrdr watch` prints for these events, on a terminal `width` columns wide."""
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None)
    with WatchDisplay(console, "t") as display:
        for event in events:
            display.show(event.type, event.model_dump(mode="json"))
    return out.getvalue(), display


def final_bars(display: WatchDisplay, width: int = WIDTH) -> dict[str, str]:
    """The bars as the final screen shows them ("phase", "epoch", "batch" when visible)."""
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(display.progress.get_renderable())
    bars: dict[str, str] = {}
    for line in out.getvalue().splitlines():
        for name in ("phase", "epoch", "batch"):
            if line.startswith(name + " "):
                bars[name] = line.rstrip()
    return bars


def stopped_early(script: TrainingScript, ran: int, planned: int, best: int) -> list[ev.Event]:
    """A run planned for `planned` epochs that early stopping ended after `ran`."""
    out: list[ev.Event] = [script.started()]
    out += [script.phase(name, i) for i, name in enumerate(PHASES[: _TRAINING + 1])]
    for epoch in range(1, ran + 1):
        out.append(script.batch(epoch, 2, total_epochs=planned, total_batches=4))
        done = script.epoch_completed(epoch, 1.0 / epoch, total_epochs=planned)
        out.append(done.model_copy(update={"best_epoch": min(epoch, best)}))
    later = enumerate(PHASES[_TRAINING + 1 :], start=_TRAINING + 1)
    out += [script.phase(name, i) for i, name in later]
    out.append(script.completed())
    return out


def test_watch_final_screen_of_an_early_stop_names_the_epochs_and_shows_no_eta() -> None:
    script = TrainingScript("t", strategy="tiny_rsi", timeframe="1h")
    _, display = screen(stopped_early(script, ran=22, planned=50, best=14))
    bars = final_bars(display)
    assert display.exit_code == 0
    assert "stopped early at epoch 22 of 50, best 14" in bars["epoch"]
    assert "22/22" in bars["epoch"]  # the epochs that ran, all done
    assert "11/11" in bars["phase"] and "done" in bars["phase"]
    assert "batch" not in bars  # no half-full batch bar left behind
    for bar in (bars["phase"], bars["epoch"]):
        assert not re.search(r"\d+:\d\d:\d\d|-:--:--", bar), bar  # no ETA once it has ended
    assert "eta" not in bars["epoch"]


@pytest.mark.parametrize("outcome", ["failed", "cancelled"])
def test_watch_final_screen_of_a_stopped_training_has_no_eta_nor_half_batch(outcome: str) -> None:
    events = TrainingScript("t", strategy="tiny_rsi", timeframe="1h").run(
        epochs=3, batches=4, outcome=outcome
    )
    # The last progress before the end stops half way through an epoch.
    last_batch = next(e for e in reversed(events) if isinstance(e, ev.BatchProgress))
    events.insert(events.index(last_batch) + 1, last_batch.model_copy(update={"batch": 2}))
    text, display = screen(events)
    bars = final_bars(display)
    assert "batch" not in bars and set(bars) == {"phase", "epoch"}
    for bar in bars.values():
        assert not re.search(r"\d+:\d\d:\d\d|-:--:--", bar), bar
    assert outcome in text


def test_watch_phase_counter_reads_like_the_phase_lines() -> None:
    events = TrainingScript("t", strategy="tiny_rsi", timeframe="1h").run(
        epochs=1, batches=1, outcome="none"
    )
    text, display = screen(events)
    assert "phase 9/11: training" in text
    assert "9/11" in final_bars(display)["phase"]
    assert re.search(r"\d+:\d\d:\d\d|-:--:--", final_bars(display)["batch"])  # still running


def test_ctrl_c_on_watch_says_the_training_continues_and_exits_4(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> Any:
        yield from ()
        raise KeyboardInterrupt

    monkeypatch.setattr("services.cli.client.sse.follow", interrupted)
    out = io.StringIO()
    monkeypatch.setattr(
        client_commands, "_console", lambda: Console(file=out, width=WIDTH, color_system=None)
    )
    client = ApiClient("http://api", transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    code = client_commands._watch(client, "0123abcd-0000-0000-0000-000000000000", after=0)
    assert code == EXIT_DETACHED == 4
    assert code not in (0, 1, 130)
    said = " ".join(out.getvalue().split())
    assert "stopped watching; training 0123abcd-0000-0000-0000-000000000000 continues" in said
    assert "ktrdr cancel 0123abcd-0000-0000-0000-000000000000" in said


def test_watch_against_a_stopped_server_backs_off_then_gives_up() -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    client = ApiClient("http://api", transport=httpx.MockTransport(refused))
    retries: list[int] = []
    with pytest.raises(ApiError) as caught:
        list(
            follow(
                client,
                "t",
                after=7,
                give_up_after_s=30,
                on_reconnect=lambda last, _why: retries.append(last),
                sleep=sleep,
                clock=lambda: now[0],
            )
        )
    assert caught.value.status is None  # exit 3: unreachable
    assert "gave up after 30 s" in str(caught.value)
    assert slept[: len(BACKOFF_S)] == list(BACKOFF_S)  # backs off, then stays at the last step
    assert set(slept[len(BACKOFF_S) :]) == {BACKOFF_S[-1]}
    assert 30 <= sum(slept) <= 30 + BACKOFF_S[-1]
    assert set(retries) == {7}  # each retry resumes after the last event seen


def listing(count: int = 3) -> list[dict[str, Any]]:
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    items = []
    for i, status in enumerate(["cancelling", "completed", "queued"][:count]):
        items.append(
            {
                "training_id": f"{i:x}1234567-89ab-cdef-0123-456789abcdef",
                "status": status,
                "strategy": "a_rather_long_strategy_name_for_a_narrow_terminal",
                "epoch": 22 if status != "queued" else None,
                "total_epochs": 50 if status != "queued" else None,
                "progress": 0.44 if status != "queued" else None,
                "requested_at": (now - timedelta(minutes=90)).isoformat(),
                "started_at": (now - timedelta(minutes=80)).isoformat()
                if status != "queued"
                else None,
                "finished_at": (now - timedelta(minutes=5)).isoformat()
                if status == "completed"
                else None,
                "best_metrics": {"val_loss": 0.61234} if status != "queued" else None,
                "model": {"strategy": "s", "timeframe": "1h", "version": 3}
                if status == "completed"
                else None,
            }
        )
    return items


def render(table: Any, width: int) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(table)
    return out.getvalue().splitlines()


def test_list_fits_80_columns_with_short_ids_and_whole_status_words() -> None:
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    lines = render(trainings_table(listing(), now=now), 80)
    assert max(len(line) for line in lines) <= 80
    text = "\n".join(lines)
    for status in ("cancelling", "completed", "queued"):
        assert re.search(rf"\b{status}\b", text), status
    assert "01234567 " in text and "01234567-89ab" not in text  # short ids
    assert "1h15m00s" not in text and "1h15m" in text  # the completed one ran 75 minutes
    assert "1h20m" in text  # the cancelling one is still running: until now


def test_list_wide_shows_full_ids_duration_best_metric_and_model() -> None:
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    text = "\n".join(render(trainings_table(listing(), wide=True, now=now), 200))
    assert "01234567-89ab-cdef-0123-456789abcdef" in text
    assert "0.6123" in text and "s/1h_v3" in text and "1h15m" in text


def test_a_short_id_resolves_to_the_one_training_it_starts() -> None:
    items = listing()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": items, "next": None})

    client = ApiClient("http://api", transport=httpx.MockTransport(handler))
    assert resolve_id(client, "1123") == items[1]["training_id"]
    with pytest.raises(ApiError, match="no training id starts with '9999'"):
        resolve_id(client, "9999")
    with pytest.raises(ApiError, match="neither a training id"):
        resolve_id(client, "12")
    items.append({**items[0], "training_id": "11234567-0000-0000-0000-000000000000"})
    with pytest.raises(ApiError, match="several training ids"):
        resolve_id(client, "1123")


def help_text(*command: str) -> str:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": str(WIDTH)})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(
    "command", [("submit",), ("list",), ("watch",), ("up",), ("keys", "create")]
)
def test_flags_are_shown_as_flags_not_as_bool_values(command: tuple[str, ...]) -> None:
    text = help_text(*command)
    assert "<bool>" not in text and "BOOLEAN" not in text
    assert "--help" in text


def test_train_and_submit_speak_one_device_vocabulary() -> None:
    for command in ("train", "submit"):
        assert "<any|cpu|cuda|mps>" in help_text(command), command
    refused = CliRunner().invoke(app, ["submit", "x", "--device", "auto"])
    assert refused.exit_code == 2 and "auto" in refused.output


def test_strategies_list_shows_every_file_and_why_one_does_not_load(tmp_path: Path) -> None:
    shutil.copy(STRATEGIES / "neuro_mean_reversion.yaml", tmp_path)
    (tmp_path / "broken.yaml").write_text("name: broken\nbogus: 1\n")
    result = CliRunner().invoke(
        app, ["strategies", "list", "--strategies-dir", str(tmp_path)], env={"COLUMNS": "120"}
    )
    assert result.exit_code == 0, result.output
    assert "neuro_mean_reversion" in result.output and "EURUSD" in result.output
    assert re.search(r"broken .*does not load", result.output)


def test_strategies_validate_passes_with_warnings_and_fails_with_every_problem(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    ok = runner.invoke(
        app, ["strategies", "validate", str(STRATEGIES / "neuro_mean_reversion.yaml")]
    )
    assert ok.exit_code == 0, ok.output
    assert "valid: neuro_mean_reversion" in ok.output
    assert "warning: sections not used by training" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nbogus: 1\n")
    refused = runner.invoke(app, ["strategies", "validate", str(bad)])
    assert refused.exit_code == 2
    assert "invalid:" in refused.output
    assert "bogus: unknown field" in refused.output and "indicators" in refused.output
    missing = runner.invoke(app, ["strategies", "validate", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_submit_prints_the_warnings_as_soon_as_it_is_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    accepted = {
        "training_id": "0123abcd-0000-0000-0000-000000000000",
        "status": "queued",
        "links": {},
        "warnings": ["section 'decisions' is not used by training"],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(202, json=accepted)

    monkeypatch.setattr(
        client_commands,
        "_client",
        lambda url, key: ApiClient("http://api", transport=httpx.MockTransport(handler)),
    )
    result = CliRunner().invoke(app, ["submit", "neuro_mean_reversion"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == accepted["training_id"]
    assert "warning: section 'decisions' is not used by training" in result.output
