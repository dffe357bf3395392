"""In-memory fakes of the nightly retrain's ports (ports.retrain, ports.model_store), for tests.
The run log fake passes the same contract as the real run logs (tests/integration/
test_run_log_contract.py), the model store fake the same as the real stores (tests/integration/
test_model_store.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from domain.errors import Conflict, DependencyUnavailable, InvalidInput, NotFound
from domain.model import ModelInfo, ModelMetrics, model_version_problem, new_model_version
from domain.nightly_retrain import NightlyRetrain
from domain.retrain import RetrainPolicy, RetrainRun, RunStatus, Stage
from tests.fakes import FixedClock, InMemoryLeases
from tests.fakes_feed import RecordingMetrics


def _down(component: str) -> DependencyUnavailable:
    return DependencyUnavailable(component, f"the fake {component} is switched off")


class InMemoryModelStore:
    """Implements `ports.model_store.ModelStore`; `unavailable` makes every call fail."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.infos: dict[str, ModelInfo] = {}
        self.pointer: str | None = None
        self.unavailable = False
        self.publishes: list[str] = []

    def put(self, version: str, blob: bytes, info: ModelInfo) -> None:
        self._check()
        if problem := model_version_problem(version):
            raise InvalidInput(f"model version {problem}", {"version": problem})
        if info.version != version:
            raise ValueError(f"info describes version {info.version!r}, not {version!r}")
        if version in self.infos:
            raise Conflict(f"{version} is stored already")
        self.blobs[version], self.infos[version] = blob, info

    def get(self, version: str) -> bytes:
        self.info(version)
        return self.blobs[version]

    def info(self, version: str) -> ModelInfo:
        self._check()
        if version not in self.infos:
            raise NotFound(f"{version} is not stored")
        return self.infos[version]

    def publish(self, version: str) -> None:
        self.info(version)
        self.pointer = version
        self.publishes.append(version)

    def published(self) -> str | None:
        self._check()
        return self.pointer

    def _check(self) -> None:
        if self.unavailable:
            raise _down("model_store")


@dataclass
class FakeExport:
    """Implements `ports.retrain.InteractionExport`: exports `new_rows` in chunks of 10."""

    new_rows: int = 25
    failure: Exception | None = None
    calls: list[datetime] = field(default_factory=list)

    def export_new(self, now: datetime, progress: Callable[[int], None] | None = None) -> int:
        self.calls.append(now)
        if self.failure is not None:
            raise self.failure
        done = 0
        while done < self.new_rows:
            done = min(done + 10, self.new_rows)
            if progress is not None:
                progress(done)
        exported, self.new_rows = self.new_rows, 0
        return exported


@dataclass(frozen=True)
class FakeWindow:
    training_rows: int
    held_out_rows: int
    held_out_from: datetime = datetime(2026, 11, 23, 2, tzinfo=UTC)
    end: datetime = datetime(2026, 11, 24, 2, tzinfo=UTC)


@dataclass(frozen=True)
class FakeCandidate:
    info: ModelInfo


@dataclass
class FakeLab:
    """Implements `ports.retrain.ModelLab`. The candidate scores `candidate_metrics`; a stored
    version scores `stored_metrics[version]`. `failures` maps a method name to what it raises;
    `on_train` runs inside `train` (to kill or stall a run there)."""

    store: InMemoryModelStore
    training_rows: int = 900
    held_out_rows: int = 100
    candidate_metrics: ModelMetrics = field(default_factory=lambda: ModelMetrics(0.2, 0.3, 0.9))
    stored_metrics: dict[str, ModelMetrics] = field(default_factory=dict)
    failures: dict[str, Exception] = field(default_factory=dict)
    on_train: Callable[[], None] | None = None
    trained: int = 0
    refits: int = 0
    compared_rows: int = -1

    def read(self, start: datetime, held_out_from: datetime, end: datetime) -> FakeWindow:
        self._maybe_fail("read")
        return FakeWindow(self.training_rows, self.held_out_rows, held_out_from, end)

    def outside(self, window: object, start: datetime, end: datetime) -> FakeWindow:
        """Held-out rows are spread evenly over [held_out_from, end): the share outside
        [start, end) of that span stays."""
        assert isinstance(window, FakeWindow)
        span = (window.end - window.held_out_from).total_seconds()
        lo, hi = max(start, window.held_out_from), min(end, window.end)
        covered = max((hi - lo).total_seconds(), 0.0) / span if span else 1.0
        self.compared_rows = round(window.held_out_rows * (1.0 - covered))
        return replace(window, held_out_rows=self.compared_rows)

    def refit(self, window: object, candidate: object, trained_at: datetime) -> FakeCandidate:
        assert isinstance(window, FakeWindow) and isinstance(candidate, FakeCandidate)
        self._maybe_fail("refit")
        self.refits += 1
        version = new_model_version(trained_at, f"{self.refits:06x}f")
        info = ModelInfo(version, trained_at, trained_at, window.end, 1, 1, 1, None, {})
        return FakeCandidate(info)

    def train(self, window: object, trained_at: datetime) -> FakeCandidate:
        self._maybe_fail("train")
        if self.on_train is not None:
            self.on_train()
        self.trained += 1
        version = new_model_version(trained_at, f"{self.trained:06x}")
        info = ModelInfo(version, trained_at, trained_at, trained_at, 1, 1, 1, None, {})
        return FakeCandidate(info)

    def evaluate(self, window: object, candidate: object) -> ModelMetrics:
        self._maybe_fail("evaluate")
        return self.candidate_metrics

    def evaluate_stored(self, window: object, version: str) -> ModelMetrics:
        self._maybe_fail("evaluate_stored")
        self.store.info(version)
        return self.stored_metrics[version]

    def keep(self, candidate: object, metrics: ModelMetrics) -> str:
        assert isinstance(candidate, FakeCandidate)
        self._maybe_fail("keep")
        info = replace(candidate.info, metrics=metrics)
        self.store.put(info.version, b"model", info)
        self.stored_metrics[info.version] = metrics
        return info.version

    def _maybe_fail(self, method: str) -> None:
        if method in self.failures:
            raise self.failures[method]


class FakeModelService:
    """Implements `ports.retrain.ModelServiceAdmin` as a model service loading from `store`.
    `down` refuses every call; `revert_after_load` swaps the old version back once right
    after a load, as the service's poll of the old published pointer would; `closed` says
    `close` was called."""

    def __init__(self, store: InMemoryModelStore, serving: str | None = None) -> None:
        self.store = store
        self.serving = serving
        self.down = False
        self.refuse_loads = False
        self.revert_after_load = False
        self.loads: list[str] = []
        self.closed = False

    def load(self, version: str) -> str:
        if self.down or self.refuse_loads:
            raise _down("model_service")
        self.store.info(version)
        self.loads.append(version)
        previous, self.serving = self.serving, version
        if self.revert_after_load:
            self.revert_after_load = False
            self.serving = previous
            return version  # the answer to LoadModel still names the version it loaded
        return version

    def restart(self) -> None:
        """Come back up, loading the store's published version (as `feedrec lightfm` does)."""
        self.down = False
        self.serving = self.store.pointer

    def serving_version(self) -> str | None:
        if self.down:
            raise _down("model_service")
        return self.serving

    def close(self) -> None:
        self.closed = True


class InMemoryRunLog:
    """Implements `ports.retrain.RunLog`. `rows` are the current rows by run id; `history`
    every record call in order; `unavailable` makes every call fail."""

    def __init__(self) -> None:
        self.rows: dict[str, RetrainRun] = {}
        self.history: list[RetrainRun] = []
        self.unavailable = False

    def record(self, run: RetrainRun) -> None:
        self._check()
        self.rows[run.run_id] = run
        self.history.append(run)

    def unfinished(self) -> list[RetrainRun]:
        self._check()
        running = [run for run in self.rows.values() if run.status is RunStatus.RUNNING]
        return sorted(running, key=lambda run: (run.started_at, run.run_id))

    def recent(self, limit: int) -> list[RetrainRun]:
        self._check()
        newest = sorted(self.rows.values(), key=lambda run: (run.started_at, run.run_id))[::-1]
        return newest[: max(limit, 0)]

    def stages_recorded(self, run_id: str) -> list[Stage | None]:
        return [run.failed_stage for run in self.history if run.run_id == run_id]

    def _check(self) -> None:
        if self.unavailable:
            raise _down("run_log")


@dataclass
class RecordingReport:
    """Implements `ports.retrain.RunReport`, keeping what it was asked to draw."""

    written: list[list[RetrainRun]] = field(default_factory=list)

    def write(self, runs: Sequence[RetrainRun]) -> str:
        self.written.append(list(runs))
        return "memory://reports/metrics.png"


NIGHT = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
OLD = "20261125T020000Z-0aaaaa"
OLD_METRICS = ModelMetrics(0.20, 0.30, 0.90)
TTL = timedelta(hours=2)


@dataclass
class RetrainWorld:
    """Every port of `NightlyRetrain` as a fake, wired together; `retrain()` builds one."""

    store: InMemoryModelStore = field(default_factory=InMemoryModelStore)
    export: FakeExport = field(default_factory=FakeExport)
    run_log: InMemoryRunLog = field(default_factory=InMemoryRunLog)
    leases: InMemoryLeases = field(default_factory=InMemoryLeases)
    metrics: RecordingMetrics = field(default_factory=RecordingMetrics)
    clock: FixedClock = field(default_factory=lambda: FixedClock(NIGHT))
    report: RecordingReport = field(default_factory=RecordingReport)

    def __post_init__(self) -> None:
        self.lab = FakeLab(self.store)
        self.service = FakeModelService(self.store)

    def serve_old_model(self) -> None:
        info = ModelInfo(OLD, NIGHT - timedelta(days=1), NIGHT, NIGHT, 1, 1, 1, OLD_METRICS, {})
        self.store.put(OLD, b"old", info)
        self.store.publish(OLD)
        self.lab.stored_metrics[OLD] = OLD_METRICS
        self.service.serving = OLD

    def retrain(self, holder: str = "worker-a") -> NightlyRetrain:
        return NightlyRetrain(
            export=self.export,
            lab=self.lab,
            store=self.store,
            admin=self.service,
            run_log=self.run_log,
            leases=self.leases,
            metrics=self.metrics,
            clock=self.clock,
            holder=holder,
            policy=RetrainPolicy(tolerance=0.05, lease_ttl=TTL),
            report=self.report,
        )

    def counted(self) -> list[dict[str, str]]:
        return [tags for name, _, tags in self.metrics.counters if name == "retrain.runs"]


@dataclass
class RecordingProgress:
    """Implements `domain.retrain.RetrainProgress`, keeping what it was told."""

    events: list[tuple[str, str, object]] = field(default_factory=list)

    def stage_started(self, stage: Stage) -> None:
        self.events.append(("start", stage.value, None))

    def rows(self, stage: Stage, total: int) -> None:
        self.events.append(("rows", stage.value, total))

    def stage_finished(self, stage: Stage, ok: bool) -> None:
        self.events.append(("end", stage.value, ok))
