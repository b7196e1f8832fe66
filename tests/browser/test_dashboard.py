"""The dashboard at `/`, in Chromium, against a real `ktrdr up`: the key prompt (a bad key, an
outage, an empty list), a training submitted from the page followed live to its metrics and
model, a cancel, a comparison, and a dropped stream that resumes with no gap.

The tests of this module share one service and run in order (the first sees an empty list)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.api.apikeys import generate_key
from tests.browser.conftest import Service, run_async, screenshot
from tests.e2e.harness import END, FIXTURES, START, SseReader, history

pytestmark = pytest.mark.browser

RUN_S = 180.0
LONG_EPOCHS = 300  # e2e_tiny runs some tens of epochs a second: long enough to watch it move


def expect(locator: Any) -> Any:
    """Playwright's retrying assertions (imported here: without Playwright the module still
    collects, and the `browser` fixture says why it cannot run)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def sign_in(page: Any, key: str) -> None:
    page.goto("/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Use this key").click()


def points(page: Any, chart: str, series: str) -> int:
    found = page.locator(f'#{chart} [data-series="{series}"]')
    return int(found.get_attribute("data-points")) if found.count() else 0


def wait_points_above(page: Any, chart: str, series: str, count: int) -> int:
    page.wait_for_function(
        """([chart, series, count]) => {
            const g = document.querySelector(`#${chart} [data-series="${series}"]`);
            return g !== null && Number(g.dataset.points) > count;
        }""",
        arg=[chart, series, count],
        timeout=RUN_S * 1000,
    )
    return points(page, chart, series)


def wait_status(page: Any, status: str) -> None:
    page.locator(f'#training-status [data-status="{status}"]').wait_for(timeout=RUN_S * 1000)


def submit_by_api(service: Service, epochs: int, seed: int = 7) -> str:
    body = {
        "strategy": "e2e_tiny",
        "start_date": START,
        "end_date": END,
        "overrides": {"epochs": epochs},
        "seed": seed,
    }
    headers = {"Authorization": f"Bearer {service.key}"}
    response = httpx.post(f"{service.direct_url}/api/v1/trainings", json=body, headers=headers)
    assert response.status_code == 202, response.text
    return str(response.json()["training_id"])


def to_the_end(service: Service, training_id: str) -> list[dict[str, Any]]:
    """Follows the training's stream to its terminal event; returns its whole JSON log."""

    async def follow() -> list[dict[str, Any]]:
        headers = {"Authorization": f"Bearer {service.key}"}
        async with httpx.AsyncClient(base_url=service.direct_url, headers=headers) as client:
            async with SseReader(client, f"/api/v1/trainings/{training_id}/events") as sse:
                await sse.to_end(RUN_S)
            return await history(client, training_id)

    return run_async(follow())


def test_a_bad_key_an_empty_list_and_an_outage_each_get_a_clear_message(
    page: Any, service: Service
) -> None:
    sign_in(page, generate_key())  # well formed, but no such key
    error = page.locator("#api-key-error")
    expect(error).to_contain_text("The API key was refused")
    sign_in(page, "not-a-key")
    expect(error).to_contain_text("The API key was refused")
    expect(page.locator("#nav")).to_be_hidden()

    # Keyboard only: the prompt has the focus, Enter submits it.
    page.goto("/")
    expect(page.get_by_label("API key")).to_be_focused()
    page.keyboard.type(service.key)
    page.keyboard.press("Enter")
    empty = page.locator("#trainings-list [data-empty]")
    empty.wait_for()
    assert "No trainings yet" in empty.inner_text()

    with service.proxy.outage():
        page.locator("#trainings-list [data-problem=outage]").wait_for()
        assert "Cannot reach the ktrdr API" in page.locator("#trainings-list").inner_text()
    empty.wait_for()  # back by itself once the API answers again

    page.reload()  # the key is remembered for the browser session
    empty.wait_for()
    assert page.locator("#nav").is_visible()


def test_submit_from_the_page_and_follow_it_to_its_metrics_and_model(
    page: Any, service: Service
) -> None:
    sign_in(page, service.key)
    page.get_by_role("link", name="Submit a training").click()
    page.locator("#strategy option[value=e2e_tiny]").wait_for(state="attached")
    page.get_by_label("Strategy", exact=True).select_option("e2e_tiny")
    page.get_by_label("Start date").fill("2017-01-02")
    page.get_by_label("End date").fill("2016-12-01")  # before the start: refused, shown there
    page.get_by_label("Epochs").fill(str(LONG_EPOCHS))
    page.get_by_role("button", name="Submit training").click()
    expect(page.locator("#end_date-error")).to_contain_text("start_date")
    expect(page.get_by_label("End date")).to_have_attribute("aria-invalid", "true")

    page.get_by_label("End date").fill("2017-03-31")
    page.get_by_label("Seed").fill("11")
    page.get_by_role("button", name="Submit training").click()
    page.wait_for_url(re.compile(r"#/trainings/[0-9a-f-]{36}$"))
    training_id = page.url.rsplit("/", 1)[1]

    # The curve advances while the page watches, and so does the progress.
    first = wait_points_above(page, "loss-chart", "validation loss", 1)
    progress_then = float(page.locator("#progress-bar").get_attribute("value") or 0)
    later = wait_points_above(page, "loss-chart", "validation loss", first)
    assert later > first
    page.wait_for_function(
        "v => Number(document.querySelector('#progress-bar').getAttribute('value')) > v",
        arg=progress_then,
    )
    assert (
        page.locator("#eta").inner_text() != "—"
        or page.locator('#training-status [data-status="completed"]').count()
    )

    wait_status(page, "completed")
    assert points(page, "loss-chart", "validation loss") == LONG_EPOCHS
    assert points(page, "loss-chart", "train loss") == LONG_EPOCHS
    assert points(page, "accuracy-chart", "validation accuracy") == LONG_EPOCHS
    assert page.locator("#eta").inner_text() == "—"  # no ETA on a finished training
    assert page.locator("#batch").inner_text() == "—"
    page.locator("#test-metrics").wait_for()
    assert re.search(r"Accuracy\s+0\.\d{3}", page.locator("#test-metrics").inner_text())
    assert page.locator("#verdict").inner_text().startswith("Skill:")
    assert page.locator("#confusion-matrix tbody tr").count() == 3
    assert page.locator("#per-class tbody tr").count() == 3
    model = page.locator("#model")
    assert "e2e_tiny/1h_v" in model.inner_text()
    assert page.locator("#cancel").is_hidden()
    assert page.locator("#stream-state").get_attribute("data-state") == "ended"
    screenshot(page, "training-page")

    view = httpx.get(
        f"{service.direct_url}/api/v1/trainings/{training_id}",
        headers={"Authorization": f"Bearer {service.key}"},
    ).json()
    assert view["status"] == "completed" and view["epoch"] == LONG_EPOCHS

    model.get_by_role("link").click()  # on to the models page, which lists it
    page.locator("#models tbody tr").first.wait_for()
    name = f"e2e_tiny/1h_v{view['model']['version']}"
    assert page.locator(f'#models [data-model="{name}"]').count() == 1
    page.locator(f'#models [data-model="{name}"] button').click()
    panel = page.locator("#model-panel")
    expect(panel.locator("h2")).to_have_text(name)
    expect(panel).to_contain_text("Lineage")
    expect(panel.locator("#model-lineage")).to_contain_text(training_id)

    with page.expect_download() as downloading:  # the artifact, fetched with the key
        panel.get_by_role("button", name="Download the model").click()
    saved = downloading.value
    assert saved.suggested_filename == name.replace("/", "-") + ".tar"
    expect(page.locator("#models-status")).to_contain_text("sha256")

    panel.get_by_label(re.compile("Point an alias at")).fill("champion")
    panel.get_by_role("button", name="Set alias").click()
    expect(page.locator("#models-status")).to_contain_text("Alias champion now names")
    expect(page.locator(f'#models [data-model="{name}"]')).to_contain_text("champion")


def test_cancel_a_running_training_from_the_page(page: Any, service: Service) -> None:
    training_id = submit_by_api(service, epochs=5_000)  # under the limit, far past the test
    sign_in(page, service.key)
    page.goto(f"/#/trainings/{training_id}")
    wait_points_above(page, "loss-chart", "validation loss", 0)  # it is running
    page.get_by_role("button", name="Cancel training").click()
    expect(page.locator("#cancel-message")).to_contain_text("Cancel requested")
    wait_status(page, "cancelled")
    assert page.locator("#cancel").is_hidden()
    log = page.locator("#event-log tbody tr")
    assert log.last.get_attribute("data-type") == "Cancelled"
    requested = page.locator('#event-log tr[data-type="CancelRequested"]')
    assert requested.count() == 1

    # The audit view: the training as it stood right after the cancel was requested.
    position = requested.get_attribute("data-position")
    requested.get_by_role("button").click()
    as_of = page.locator(f'#as-of [data-as-of="{position}"]')
    expect(as_of).to_contain_text(f"As of position {position}")
    expect(as_of.locator("[data-status]")).to_have_attribute("data-status", "cancelling")


def test_compare_two_trainings(page: Any, service: Service) -> None:
    ids = [submit_by_api(service, epochs=12, seed=1), submit_by_api(service, epochs=20, seed=2)]
    for training_id in ids:
        assert to_the_end(service, training_id)[-1]["type"] == "Completed"
    sign_in(page, service.key)
    for training_id in ids:
        page.locator(f'tr[data-training="{training_id}"] input[type=checkbox]').check()
    page.get_by_role("button", name="Compare selected (2)").click()
    page.locator("#compare-metrics").wait_for()
    assert page.url.endswith(f"#/compare/{ids[0]},{ids[1]}")
    chart = page.locator("#compare-val-loss [data-series]")
    assert [chart.nth(i).get_attribute("data-points") for i in range(2)] == ["12", "20"]
    differing = page.locator("#compare-differences tbody tr")
    settings = {differing.nth(i).get_attribute("data-setting") for i in range(differing.count())}
    assert settings == {"seed", "overrides.epochs"}
    row = page.locator('#compare-differences tr[data-setting="overrides.epochs"] td')
    assert [row.nth(0).inner_text(), row.nth(1).inner_text()] == ["12", "20"]
    assert page.locator("#compare-metrics").inner_text().count("completed") == 2
    screenshot(page, "compare-view")


def test_a_dropped_stream_resumes_with_no_gap(page: Any, service: Service) -> None:
    training_id = submit_by_api(service, epochs=LONG_EPOCHS, seed=3)
    sign_in(page, service.key)
    page.goto(f"/#/trainings/{training_id}")
    state = page.locator("#stream-state")
    before = wait_points_above(page, "loss-chart", "validation loss", 2)
    with service.proxy.outage():  # every connection dropped; new ones refused meanwhile
        page.locator('#stream-state[data-state="reconnecting"]').wait_for()
    assert service.proxy.cuts >= 1
    page.locator('#stream-state[data-state="live"], #stream-state[data-state="ended"]').wait_for()
    wait_status(page, "completed")
    assert state.get_attribute("data-state") == "ended"

    log = to_the_end(service, training_id)
    shown = page.eval_on_selector_all(
        "#event-log tbody tr", "rows => rows.map(r => Number(r.dataset.position))"
    )
    assert shown == [e["position"] for e in log]  # every event once, in order: no gap, no dup
    assert points(page, "loss-chart", "validation loss") == LONG_EPOCHS > before


def test_an_uploaded_strategy_is_checked_and_its_errors_shown_by_the_file(
    page: Any, service: Service, tmp_path: Path
) -> None:
    broken = tmp_path / "mine.yaml"
    text = (FIXTURES / "e2e_tiny.yaml").read_text()
    broken.write_text(text.replace("period: 14", "period: -3"))
    sign_in(page, service.key)
    page.goto("/#/submit")
    page.locator("#strategy option[value=__upload__]").wait_for(state="attached")
    page.get_by_label("Strategy", exact=True).select_option("__upload__")
    page.get_by_label("Strategy file (YAML)").set_input_files(str(broken))
    page.get_by_role("button", name="Submit training").click()
    error = page.locator("#strategy_file-error")
    expect(error).to_contain_text("period")
    expect(page.locator("#form-error")).to_contain_text("not submitted")
    expect(page).to_have_url(re.compile(r"#/submit$"))  # nothing was submitted


def test_an_admin_creates_a_key_sees_it_once_and_revokes_it(page: Any, service: Service) -> None:
    sign_in(page, service.key)
    page.get_by_role("link", name="Keys").click()
    page.get_by_label("Name").fill("dashboard-test")
    page.get_by_label("Role").select_option("reader")
    page.get_by_role("button", name="Create key").click()
    shown = page.locator("#new-key")
    expect(shown).to_have_text(re.compile(r"^ktrdr_[0-9a-f]{16}_\S+$"))
    key_id = shown.inner_text().split("_")[1]
    row = page.locator(f'#keys tr[data-key="{key_id}"]')
    expect(row).to_contain_text("active")
    headers = {"Authorization": f"Bearer {shown.inner_text()}"}
    assert httpx.get(f"{service.direct_url}/api/v1/trainings", headers=headers).status_code == 200

    page.once("dialog", lambda dialog: dialog.accept())  # "Revoke key …?"
    row.get_by_role("button", name=re.compile("revoke key")).click()
    expect(row).to_contain_text("revoked")
    assert httpx.get(f"{service.direct_url}/api/v1/trainings", headers=headers).status_code == 401
    page.reload()
    expect(page.locator(f'#keys tr[data-key="{key_id}"]')).to_contain_text("revoked")


def test_trainers_and_dead_letters_pages_show_the_service_as_it_is(
    page: Any, service: Service
) -> None:
    sign_in(page, service.key)
    page.get_by_role("link", name="Trainers").click()
    trainers = page.locator("#trainers tbody tr")
    expect(trainers).to_have_count(1)  # `ktrdr up` runs one trainer
    expect(trainers.first.locator("[data-state]")).to_have_attribute("data-state", "alive")
    expect(trainers.first).to_contain_text("cpu")
    expect(page.locator("#queues tbody tr").first).to_be_visible()

    page.get_by_role("link", name="Dead letters").click()
    expect(page.locator("#dead-list [data-empty]")).to_contain_text("No dead letters")
