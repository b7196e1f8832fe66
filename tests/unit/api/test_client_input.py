"""Numbers and ids a client puts in a trainings URL are refused with a clear 4xx before they
reach the store: a position beyond signed 64 bits would overflow the SQL driver, a NUL byte is
refused by Postgres. `check_trainings_input` runs here on the memory store and, in
tests/integration/api, on SQLite and Postgres."""

from __future__ import annotations

import httpx

from libs.events.store.port import EventStore
from tests.unit.api.conftest import Api, requested

TRAININGS = "/api/v1/trainings"
MAX = 2**63 - 1


async def check_trainings_input(client: httpx.AsyncClient, store: EventStore) -> None:
    tid = await requested(store)
    for as_of in (str(2**64), str(MAX + 1), "9" * 40, "-1"):
        r = await client.get(f"{TRAININGS}/{tid}", params={"as_of": as_of})
        assert r.status_code == 422, (as_of, r.text)
        assert r.json()["errors"][0]["field"] == "as_of"
    r = await client.get(f"{TRAININGS}/{tid}", params={"as_of": MAX})
    assert r.status_code == 200 and r.json()["training_id"] == tid, r.text
    for cursor in ("9" * 40, str(MAX + 1), "-1", "abc"):
        r = await client.get(TRAININGS, params={"cursor": cursor})
        assert r.status_code == 422, (cursor, r.text)
        assert r.json()["errors"][0]["field"] == "cursor"
        assert "not a cursor returned by a previous page" in r.text
    r = await client.get(TRAININGS, params={"cursor": str(MAX)})
    assert r.status_code == 200 and [t["training_id"] for t in r.json()["items"]] == [tid]
    assert (await client.get(TRAININGS, params={"strategy": "a\x00b"})).status_code == 422
    for path in (f"{TRAININGS}/a%00b", f"{TRAININGS}/a%00b?as_of=1", f"{TRAININGS}/a%00b/events"):
        assert (await client.get(path)).status_code == 404, path
    assert (await client.post(f"{TRAININGS}/a%00b/cancel")).status_code == 404


async def test_out_of_range_positions_and_nul_ids_are_refused(api: Api) -> None:
    await check_trainings_input(api.client, api.store)
