"""The composition roots of the relay, worker and model service (`app.composition`): each
process built from settings with fakes as overrides, run through its entry point, and built
without opening a connection to anything the settings name."""

from __future__ import annotations

import io
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app import relay_main, worker_main
from app.composition.model_service import ModelServiceOverrides, build_model_service
from app.composition.relay import LEASE_NAME, RelayOverrides, build_relay
from app.composition.worker import WorkerOverrides, build_worker
from app.settings import Settings
from domain.errors import DependencyUnavailable
from domain.outbox import OutboxMessage
from domain.relay import BACKLOG_METRIC
from domain.retrain import RunStatus
from tests.fakes import FixedClock, InMemoryLeases, InMemoryUnitOfWorkFactory
from tests.fakes_feed import RecordingMetrics
from tests.fakes_relay import FakeEventBus
from tests.fakes_retrain import NIGHT, InMemoryModelStore, RetrainWorld

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
TOPIC = "feed.interactions.v1"


class Listener:
    """A TCP port on 127.0.0.1 that accepts nothing, to tell whether anyone connected."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(8)
        self.port: int = self._socket.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"

    def was_connected(self, within_s: float = 0.3) -> bool:
        # A connection waiting in the backlog makes a listening socket readable.
        readable, _, _ = select.select([self._socket], [], [], within_s)
        return bool(readable)

    def close(self) -> None:
        self._socket.close()


@contextmanager
def listeners(count: int) -> Iterator[list[Listener]]:
    opened = [Listener() for _ in range(count)]
    try:
        yield opened
    finally:
        for listener in opened:
            listener.close()


def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@contextmanager
def running(target: Callable[[threading.Event], None]) -> Iterator[threading.Event]:
    """`target(stop)` in a thread, stopped and joined when the block ends."""
    stop = threading.Event()
    thread = threading.Thread(target=target, args=(stop,), daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive()


# --- relay -------------------------------------------------------------------------------


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def database() -> InMemoryUnitOfWorkFactory:
    return InMemoryUnitOfWorkFactory()


@pytest.fixture
def relay_parts(
    clock: FixedClock, database: InMemoryUnitOfWorkFactory
) -> tuple[RelayOverrides, FakeEventBus]:
    bus = FakeEventBus(clock)
    overrides = RelayOverrides(
        clock=clock,
        unit_of_work=database,
        leases=InMemoryLeases(),
        bus=bus,
        provision_topic=lambda: None,
        metrics=RecordingMetrics(),
        holder="relay-a",
    )
    return overrides, bus


def accept(database: InMemoryUnitOfWorkFactory, *event_ids: str) -> None:
    with database() as uow:
        uow.outbox.add(
            [OutboxMessage(TOPIC, "u1", {"eventId": eid, "userId": "u1"}, NOW) for eid in event_ids]
        )
        uow.commit()


def test_the_relay_is_built_from_the_overrides_and_closing_it_closes_them(
    tmp_path: Path,
    database: InMemoryUnitOfWorkFactory,
    relay_parts: tuple[RelayOverrides, FakeEventBus],
) -> None:
    overrides, bus = relay_parts
    accept(database, "e1", "e2")

    composition = build_relay(Settings(data_dir=tmp_path), overrides)
    assert composition.relay is not None
    assert composition.keeper.hold()
    result = composition.relay.relay_once()
    composition.close()

    assert result.sent == 2
    assert bus.delivered == ["e1", "e2"]
    assert isinstance(overrides.leases, InMemoryLeases)
    assert overrides.leases.held[LEASE_NAME][0] == "relay-a"
    assert isinstance(overrides.metrics, RecordingMetrics)
    assert overrides.metrics.closed and bus.closed


def test_without_a_broker_configured_the_relay_has_nothing_to_publish_with(
    tmp_path: Path, database: InMemoryUnitOfWorkFactory
) -> None:
    composition = build_relay(
        Settings(data_dir=tmp_path, kafka_bootstrap_servers=""),
        RelayOverrides(unit_of_work=database, leases=InMemoryLeases(), metrics=RecordingMetrics()),
    )

    assert composition.relay is None


def test_the_relay_process_publishes_through_its_overrides_and_gives_the_lease_up_on_stop(
    tmp_path: Path,
    database: InMemoryUnitOfWorkFactory,
    relay_parts: tuple[RelayOverrides, FakeEventBus],
) -> None:
    overrides, bus = relay_parts
    settings = Settings(data_dir=tmp_path)
    accept(database, "e1", "e2", "e3")

    with running(lambda stop: relay_main.run(settings, stop, overrides)):
        wait_until(lambda: len(bus.delivered) == 3)

    assert bus.delivered == ["e1", "e2", "e3"]
    with database() as uow:
        assert uow.outbox.pending(10) == []
    assert isinstance(overrides.leases, InMemoryLeases)
    assert overrides.leases.held == {}
    assert isinstance(overrides.metrics, RecordingMetrics)
    assert bus.closed and overrides.metrics.closed


def test_the_relay_process_without_a_broker_reports_the_backlog(
    tmp_path: Path, database: InMemoryUnitOfWorkFactory
) -> None:
    metrics = RecordingMetrics()
    overrides = RelayOverrides(unit_of_work=database, leases=InMemoryLeases(), metrics=metrics)
    accept(database, "e1", "e2")

    with running(lambda stop: relay_main.run(Settings(data_dir=tmp_path), stop, overrides)):
        wait_until(lambda: bool(metrics.gauges))

    assert metrics.gauges[0] == (BACKLOG_METRIC, 2, {})
    assert metrics.closed


def test_building_the_relay_connects_to_neither_the_database_nor_the_broker(
    tmp_path: Path,
) -> None:
    with listeners(2) as (database, broker):
        settings = Settings(
            data_dir=tmp_path,
            database_url=f"postgresql+psycopg2://feedrec:secret@{database.address}/feedrec",
            kafka_bootstrap_servers=broker.address,
        )

        build_relay(settings).close()

        assert not database.was_connected()
        assert not broker.was_connected()


# --- worker ------------------------------------------------------------------------------


def worker_overrides(world: RetrainWorld) -> WorkerOverrides:
    return WorkerOverrides(
        clock=world.clock,
        metrics=world.metrics,
        export=world.export,
        lab=world.lab,
        store=world.store,
        admin=world.service,
        run_log=world.run_log,
        leases=world.leases,
        report=world.report,
        holder="worker-a",
    )


def test_the_worker_is_built_from_the_overrides_and_closing_it_closes_them(
    tmp_path: Path,
) -> None:
    world = RetrainWorld()
    world.serve_old_model()

    composition = build_worker(Settings(data_dir=tmp_path), worker_overrides(world))
    run = composition.retrain.run(composition.clock.now())
    composition.close()

    assert run.status is RunStatus.SUCCEEDED
    assert run.started_at == NIGHT
    assert world.service.serving == run.model_version
    assert world.store.published() == run.model_version
    assert world.run_log.rows == {run.run_id: run}
    assert world.report.written
    assert world.counted() == [{"status": "succeeded", "stage": "none"}]
    assert world.service.closed and world.metrics.closed


def test_retrain_now_runs_the_night_at_once_through_the_overrides(tmp_path: Path) -> None:
    world = RetrainWorld()
    bars = io.StringIO()

    run = worker_main.retrain_now(Settings(data_dir=tmp_path), bars, worker_overrides(world))

    assert run.status is RunStatus.SUCCEEDED
    assert world.run_log.rows == {run.run_id: run}
    assert "export" in bars.getvalue()
    assert world.service.closed


def test_run_log_rows_the_log_did_not_take_are_spooled_and_delivered_later(
    tmp_path: Path,
) -> None:
    world = RetrainWorld()
    world.run_log.unavailable = True
    composition = build_worker(Settings(data_dir=tmp_path), worker_overrides(world))

    run = composition.retrain.run(composition.clock.now())
    world.run_log.unavailable = False
    composition.deliver_spooled()

    assert world.run_log.rows == {run.run_id: run}


def test_building_the_worker_connects_to_nothing_it_will_use(tmp_path: Path) -> None:
    with listeners(4) as (database, model_service, s3, snowflake):
        settings = Settings(
            data_dir=tmp_path,
            database_url=f"postgresql+psycopg2://feedrec:secret@{database.address}/feedrec",
            lightfm_target=model_service.address,
            model_store_uri="s3://models/feedrec",
            export_uri="s3://exports/feedrec",
            s3_endpoint_url=f"http://{s3.address}",
            snowflake_account="feedrec",
            snowflake_host="127.0.0.1",
            snowflake_port=snowflake.port,
            snowflake_protocol="http",
        )

        build_worker(settings).close()

        for listener in (database, model_service, s3, snowflake):
            assert not listener.was_connected(within_s=0.1)


# --- model service -----------------------------------------------------------------------


def test_the_model_service_serves_from_the_store_and_clock_it_is_given(tmp_path: Path) -> None:
    store = InMemoryModelStore()
    composition = build_model_service(
        Settings(data_dir=tmp_path), ModelServiceOverrides(store=store, clock=FixedClock(NOW))
    )

    assert composition.models.current is None
    assert composition.models.refresh_published() is False  # the fake publishes nothing
    store.unavailable = True
    with pytest.raises(DependencyUnavailable):
        composition.models.refresh_published()


def test_the_model_service_listens_on_the_configured_address_once_asked(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, lightfm_bind="127.0.0.1:0")
    composition = build_model_service(settings, ModelServiceOverrides(store=InMemoryModelStore()))

    server, port = composition.listen()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
    finally:
        server.stop(grace=None).wait()


def test_building_the_model_service_connects_to_no_store_and_binds_nothing(
    tmp_path: Path,
) -> None:
    with listeners(1) as (s3,):
        bind = Listener()  # a port just given back: only the server would listen there
        bind.close()
        settings = Settings(
            data_dir=tmp_path,
            model_store_uri="s3://models/feedrec",
            s3_endpoint_url=f"http://{s3.address}",
            lightfm_bind=bind.address,
        )

        build_model_service(settings)

        assert not s3.was_connected()
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", bind.port)) != 0  # nothing listens there
