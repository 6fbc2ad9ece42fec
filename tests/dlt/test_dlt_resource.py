"""The dlt resource in a real dlt pipeline into an embedded DuckDB."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

dlt = pytest.importorskip("dlt", reason="the dlt extra is not installed (nox -s dlt)")
duckdb = pytest.importorskip("duckdb", reason="DuckDB is not installed (nox -s dlt)")

from external_messages_async._converter import parse_datetime  # noqa: E402
from external_messages_async.dlt import external_messages  # noqa: E402
from external_messages_async.testing import (  # noqa: E402
    FakePortSIPServer,
    ServerClock,
)

LOOKBACK = timedelta(days=3)


@pytest.fixture
def pbx() -> Iterator[FakePortSIPServer]:
    clock = ServerClock(datetime(2024, 7, 1, 12, 0, tzinfo=timezone.utc))
    server = FakePortSIPServer(messages=300, seed=5, clock=clock)
    with server.run_in_thread() as running:
        yield running


def _pipeline(folder: Path) -> Any:
    return dlt.pipeline(
        pipeline_name="pbx_archive",
        destination=dlt.destinations.duckdb(str(folder / "warehouse.duckdb")),
        dataset_name="pbx",
        pipelines_dir=str(folder / "pipelines"),
    )


def _rows(folder: Path) -> dict[str, tuple[Any, ...]]:
    with duckdb.connect(str(folder / "warehouse.duckdb")) as db:
        found = db.sql(
            "SELECT id, delivery, reason, created_at, msg_type FROM pbx.external_messages"
        ).fetchall()
    return {row[0]: row for row in found}


def _duplicate_ids(folder: Path) -> list[Any]:
    with duckdb.connect(str(folder / "warehouse.duckdb")) as db:
        return db.sql(
            "SELECT id, count(*) FROM pbx.external_messages GROUP BY id HAVING count(*) > 1"
        ).fetchall()


def _resource(server: FakePortSIPServer) -> Any:
    return external_messages(server.url, token=server.token, lookback=LOOKBACK)


def test_the_resource_merges_by_id_incrementally_on_created_at(
    pbx: FakePortSIPServer,
) -> None:
    resource = _resource(pbx)

    assert resource.name == "external_messages"
    assert resource.write_disposition == "merge"
    assert resource.incremental is not None


def test_a_first_run_loads_every_message(
    pbx: FakePortSIPServer, tmp_path: Path
) -> None:
    _pipeline(tmp_path).run(_resource(pbx))

    rows = _rows(tmp_path)
    assert rows.keys() == {m["id"] for m in pbx.messages}
    sample = pbx.messages[0]
    stored = rows[sample["id"]]
    assert stored[1] == sample["delivery"]
    assert stored[3] == parse_datetime(sample["created_at"])
    assert stored[4] == sample["msg_type"]


def test_a_second_run_loads_new_messages_and_merges_delivery_changes(
    pbx: FakePortSIPServer, tmp_path: Path
) -> None:
    pipeline = _pipeline(tmp_path)
    pipeline.run(_resource(pbx))
    newest = sorted(pbx.messages, key=lambda m: parse_datetime(m["created_at"]))[-3:]
    high_water = parse_datetime(newest[-1]["created_at"])
    for message in newest:
        pbx.update_message(message["id"], delivery="ERR", reason="Message expired")
    added = pbx.add_messages(25)
    pbx.requests.clear()

    pipeline.run(_resource(pbx))

    rows = _rows(tmp_path)
    assert len(rows) == 325
    assert {m["id"] for m in added} <= rows.keys()
    assert all(rows[m["id"]][1:3] == ("ERR", "Message expired") for m in newest)
    assert _duplicate_ids(tmp_path) == []
    lower_bounds = [
        parse_datetime(literal)
        for request in pbx.requests
        for literal in re.findall(
            r"created_at ge '([^']+)'", request.query.get("filter", "")
        )
    ]
    assert min(lower_bounds) == high_water - LOOKBACK  # dlt's lag is the lookback


def test_a_rerun_with_nothing_new_adds_no_duplicates(
    pbx: FakePortSIPServer, tmp_path: Path
) -> None:
    pipeline = _pipeline(tmp_path)
    pipeline.run(_resource(pbx))

    pipeline.run(_resource(pbx))
    pipeline.run(_resource(pbx))

    assert len(_rows(tmp_path)) == 300
    assert _duplicate_ids(tmp_path) == []


def test_since_limits_the_first_run(pbx: FakePortSIPServer, tmp_path: Path) -> None:
    since = datetime(2024, 6, 20, tzinfo=timezone.utc)

    _pipeline(tmp_path).run(external_messages(pbx.url, token=pbx.token, since=since))

    expected = {
        m["id"] for m in pbx.messages if parse_datetime(m["created_at"]) >= since
    }
    assert _rows(tmp_path).keys() == expected


def test_each_pbx_gets_its_own_table(pbx: FakePortSIPServer, tmp_path: Path) -> None:
    _pipeline(tmp_path).run(
        external_messages(pbx.url, token=pbx.token, name="pbx_paris")
    )

    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as db:
        count = db.sql("SELECT count(*) FROM pbx.pbx_paris").fetchall()

    assert count == [(300,)]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"since": datetime(2024, 1, 1)}, ValueError),
        ({"lookback": timedelta(days=-1)}, ValueError),
        ({"lookback": 3}, TypeError),
        ({"timeout": -1}, ValueError),
    ],
)
def test_bad_arguments_fail_before_any_request(
    pbx: FakePortSIPServer, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        external_messages(pbx.url, token=pbx.token, **kwargs)

    assert pbx.requests == []


def test_credentials_are_required_before_any_request(pbx: FakePortSIPServer) -> None:
    with pytest.raises(ValueError, match="exactly one of"):
        external_messages(pbx.url)
