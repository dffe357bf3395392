"""Scoring benchmark: ranking latency against the memory-bandwidth floor, and Recommend RPCs.

    python bench/scoring.py     (or `make bench-scoring`)

1. Measures single-core read bandwidth by timing passes over a 640 MB float32 array.
2. Ranks one user's top-50 with `LoadedModel.rank` over random 10k, 100k and 1M item
   catalogues of 64 components; the floor is the item matrix's bytes / that bandwidth, since a
   ranking must read every item vector once.
3. Starts the real `lightfm` process (`python -m app.lightfm_main`) on a 100k-item model and
   drives Recommend from 16 threads: closed loop (saturated throughput) and paced at 200 calls/s
   (latency when not saturated).

Human-readable lines, then one JSON line. Exits non-zero if any RPC fails or the server dies.
"""

from __future__ import annotations

import os

# Single-core figures on both sides of the ratio: set before numpy loads its BLAS.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import json  # noqa: E402
import queue  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import grpc  # noqa: E402
import numpy as np  # noqa: E402

from adapters.lightfm.artifact import ModelArtifact  # noqa: E402
from adapters.lightfm.scorer import LoadedModel  # noqa: E402
from adapters.model_store.local import LocalModelStore  # noqa: E402
from domain.model import ModelInfo  # noqa: E402
from proto.lightfm.v2025_9 import recommender_pb2 as pb  # noqa: E402
from proto.lightfm.v2025_9 import recommender_pb2_grpc as pb_grpc  # noqa: E402

COMPONENTS = 64
TOP = 50
N_USERS = 1_000
SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
RPC_ITEMS = 100_000
RPC_CALLERS = 16
RPC_SECONDS = 10.0
PACED_RATE = 200.0
PACED_SECONDS = 5.0
#: The paced runs with exclusions (issue 13: the worst of them counts) and how many a call has.
WINDOWS = 3
EXCLUSIONS = 500
REPO_ROOT = Path(__file__).resolve().parents[1]


def read_bandwidth(megabytes: int = 640, passes: int = 7) -> tuple[float, str, dict[str, float]]:
    """Bytes per second of the fastest single-core read pass; also every kernel's figure."""
    array = np.ones(megabytes * 1024 * 1024 // 4, dtype=np.float32)  # ones: pages are touched
    kernels: dict[str, Callable[[], object]] = {
        "max": lambda: np.maximum.reduce(array),
        "sum": lambda: np.add.reduce(array),
    }
    figures = {}
    for name, kernel in kernels.items():
        kernel()
        best = min(_timed(kernel) for _ in range(passes))
        figures[name] = array.nbytes / best
    fastest = max(figures, key=lambda name: figures[name])
    return figures[fastest], fastest, figures


def random_artifact(n_items: int, seed: int) -> ModelArtifact:
    rng = np.random.default_rng(seed)
    seen_per_user = 20
    moment = datetime(2026, 11, 24, 2, tzinfo=UTC)
    info = ModelInfo(
        version=f"bench-{n_items}",
        trained_at=moment,
        window_start=moment - timedelta(days=30),
        window_end=moment,
        n_users=N_USERS,
        n_items=n_items,
        n_interactions=N_USERS * seen_per_user,
        metrics=None,
        params={"no_components": str(COMPONENTS)},
    )
    seen = np.sort(rng.choice(n_items, size=(N_USERS, seen_per_user)), axis=1)
    return ModelArtifact(
        info=info,
        user_ids=[f"u{i:06d}" for i in range(N_USERS)],
        item_ids=[f"v{i:07d}" for i in range(n_items)],
        user_embeddings=rng.standard_normal((N_USERS, COMPONENTS), dtype=np.float32) * 0.1,
        user_biases=rng.standard_normal(N_USERS, dtype=np.float32) * 0.1,
        item_embeddings=rng.standard_normal((n_items, COMPONENTS), dtype=np.float32) * 0.1,
        item_biases=rng.standard_normal(n_items, dtype=np.float32) * 0.1,
        seen_indptr=np.arange(0, N_USERS * seen_per_user + 1, seen_per_user, dtype=np.int64),
        seen_indices=seen.reshape(-1).astype(np.int32),
    )


def rank_latencies(model: LoadedModel, budget_s: float = 3.0, max_calls: int = 3000) -> list[float]:
    """Milliseconds per `rank` call, cycling through users, after a warm-up."""
    users = [f"u{i:06d}" for i in range(N_USERS)]
    for user in users[:10]:
        model.rank(user, TOP)
    latencies: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(latencies) < max_calls and (len(latencies) < 200 or time.perf_counter() < deadline):
        user = users[len(latencies) % N_USERS]
        start = time.perf_counter()
        model.rank(user, TOP)
        latencies.append((time.perf_counter() - start) * 1000)
    return latencies


class LightfmProcess:
    """The real `lightfm` process on a free port, serving the store's published model."""

    def __init__(self, store_root: Path) -> None:
        env = dict(
            os.environ,
            MODEL_STORE_URI=str(store_root),
            LIGHTFM_BIND="127.0.0.1:0",
            LIGHTFM_POLL_INTERVAL_S="0",
            LIGHTFM_MAX_WORKERS=str(RPC_CALLERS),
            LOG_LEVEL="INFO",
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.lightfm_main"],
            cwd=REPO_ROOT,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: queue.Queue[dict[str, object]] = queue.Queue()
        threading.Thread(target=self._read_log, daemon=True).start()
        self.port = self._wait_for("port", timeout_s=30)

    def _read_log(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            try:
                self.log.put(json.loads(line))
            except json.JSONDecodeError:
                self.log.put({"message": line.rstrip()})

    def _wait_for(self, key: str, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                record = self.log.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            if key in record:
                return int(str(record[key]))
        raise RuntimeError(f"lightfm process did not report {key!r} (exit {self.process.poll()})")

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(timeout=30)


def drive(
    stub: pb_grpc.RecommenderStub,
    requests: Sequence[Any],
    callers: int,
    seconds: float,
    rate: float | None,
) -> tuple[list[float], list[str], float, float]:
    """Latencies (ms), failures, elapsed s and this process's CPU seconds of Recommend calls
    (`requests`, cycled in a scattered order) from `callers` threads for `seconds`: closed loop
    when `rate` is None, else paced to `rate` calls/s in total. An answer shorter than its
    request's limit is a failure."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    start, cpu_start = time.perf_counter(), time.process_time()
    stop_at = start + seconds

    def caller(index: int) -> None:
        mine: list[float] = []
        next_at = start + (index / rate if rate else 0.0)
        call = 0
        while True:
            if rate:
                time.sleep(max(0.0, next_at - time.perf_counter()))
                next_at += callers / rate
            sent = time.perf_counter()
            if sent >= stop_at:
                break
            request = requests[(index * 7919 + call) % len(requests)]
            call += 1
            try:
                reply = stub.Recommend(request, timeout=5)
            except grpc.RpcError as err:
                with lock:
                    failures.append(f"{err.code()}: {err.details()}")
                continue
            mine.append((time.perf_counter() - sent) * 1000)
            if len(reply.items) != request.limit:
                with lock:
                    failures.append(f"{len(reply.items)} items instead of {request.limit}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, failures, time.perf_counter() - start, time.process_time() - cpu_start


def recommend_requests(exclusions: int = 0) -> list[Any]:
    """A Recommend request for each viewer, each leaving out `exclusions` videos (a feed call
    excludes what the viewer saw and was served lately)."""
    rng = np.random.default_rng(7)
    excluded = [
        [f"v{i:07d}" for i in rng.choice(RPC_ITEMS, size=exclusions, replace=False)]
        for _ in range(8)
    ]
    return [
        pb.RecommendRequest(user_id=f"u{u:06d}", limit=TOP, exclude_video_ids=excluded[u % 8])
        for u in range(N_USERS)
    ]


def rpc_figures() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-scoring-") as folder:
        store = LocalModelStore(Path(folder))
        artifact = random_artifact(RPC_ITEMS, seed=100)
        store.put(artifact.info.version, artifact.to_bytes(), artifact.info)
        store.publish(artifact.info.version)
        del artifact
        server = LightfmProcess(Path(folder))
        try:
            with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                grpc.channel_ready_future(channel).result(timeout=10)
                stub = pb_grpc.RecommenderStub(channel)
                _wait_serving(stub)
                plain, excluding = recommend_requests(), recommend_requests(EXCLUSIONS)
                drive(stub, plain, RPC_CALLERS, 1.0, None)  # warm-up
                closed, failed, elapsed, _ = drive(stub, plain, RPC_CALLERS, RPC_SECONDS, None)
                paced, paced_failed, paced_elapsed, _ = drive(
                    stub, plain, RPC_CALLERS, PACED_SECONDS, PACED_RATE
                )
                # Issue 13: the paced target with a feed's exclusions, on every run: WINDOWS
                # runs, each one's p99, the worst of them, and p99.9 over all.
                windows = []
                for _ in range(WINDOWS):
                    run, run_failed, _, _ = drive(
                        stub, excluding, RPC_CALLERS, PACED_SECONDS, PACED_RATE
                    )
                    windows.append(run)
                    paced_failed += run_failed
        finally:
            code = server.stop()
        failures = failed + paced_failed
        if failures or code != 0:
            print(f"FAILED: {len(failures)} failed RPCs {failures[:3]}, server exit {code}")
            raise SystemExit(1)
    figures = {
        "rpc_rps_100k": len(closed) / elapsed,
        "rpc_p50_ms_100k": float(np.percentile(closed, 50)),
        "rpc_p99_ms_100k": float(np.percentile(closed, 99)),
        "rpc_paced_rps_100k": len(paced) / paced_elapsed,
        "rpc_paced_p50_ms_100k": float(np.percentile(paced, 50)),
        "rpc_paced_p99_ms_100k": float(np.percentile(paced, 99)),
        "rpc_p99_ms_100k_worst": max(float(np.percentile(w, 99)) for w in windows),
        "rpc_p999_ms_100k_excl": float(np.percentile(np.concatenate(windows), 99.9)),
        "rpc_p50_ms_100k_excl": float(np.percentile(np.concatenate(windows), 50)),
    }
    print(
        f"RPC 100k items, {RPC_CALLERS} callers closed loop: {figures['rpc_rps_100k']:.0f} calls/s,"
        f" p50 {figures['rpc_p50_ms_100k']:.2f} ms, p99 {figures['rpc_p99_ms_100k']:.2f} ms"
        f" ({len(closed)} calls)"
    )
    print(
        f"RPC 100k items, paced at {PACED_RATE:.0f}/s: {figures['rpc_paced_rps_100k']:.0f} calls/s,"
        f" p50 {figures['rpc_paced_p50_ms_100k']:.2f} ms,"
        f" p99 {figures['rpc_paced_p99_ms_100k']:.2f} ms ({len(paced)} calls)"
    )
    print(
        f"RPC 100k items, paced at {PACED_RATE:.0f}/s with {EXCLUSIONS} exclusions, {WINDOWS}"
        f" runs: p50 {figures['rpc_p50_ms_100k_excl']:.2f} ms, p99 per run "
        + "/".join(f"{np.percentile(w, 99):.2f}" for w in windows)
        + f" ms (worst {figures['rpc_p99_ms_100k_worst']:.2f}),"
        f" p99.9 {figures['rpc_p999_ms_100k_excl']:.2f} ms"
    )
    return figures


def _wait_serving(stub: pb_grpc.RecommenderStub) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            stub.DescribeModel(pb.DescribeModelRequest(), timeout=2)
            return
        except grpc.RpcError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _timed(kernel: Callable[[], object]) -> float:
    start = time.perf_counter()
    kernel()
    return time.perf_counter() - start


def _ms(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> int:
    bandwidth, kernel, figures = read_bandwidth()
    print(
        "single-core read bandwidth: "
        + ", ".join(f"{name} {value / 1e9:.1f} GB/s" for name, value in figures.items())
        + f" -> floor uses {kernel} ({bandwidth / 1e9:.1f} GB/s)"
    )
    result: dict[str, float] = {"read_gbps": bandwidth / 1e9}
    for label, n_items in SIZES.items():
        artifact = random_artifact(n_items, seed=n_items)
        model = LoadedModel.from_artifact(artifact)
        del artifact
        latencies = rank_latencies(model)
        floor_ms = model.score_matrix_bytes() / bandwidth * 1000
        p50, p99 = _ms(latencies, 50), _ms(latencies, 99)
        result |= {
            f"ms_p50_{label}": p50,
            f"ms_p99_{label}": p99,
            f"floor_ms_{label}": floor_ms,
            f"ratio_{label}": p50 / floor_ms,
        }
        print(
            f"rank top-{TOP} of {n_items:>9,} items x {COMPONENTS}: p50 {p50:7.3f} ms,"
            f" p99 {p99:7.3f} ms, floor {floor_ms:7.3f} ms"
            f" ({model.score_matrix_bytes() / 1e6:.0f} MB), ratio {p50 / floor_ms:.2f}"
            f" [{len(latencies)} calls]"
        )
        del model
    result |= rpc_figures()
    summary: dict[str, float | bool] = {key: round(value, 4) for key, value in result.items()}
    summary["target_ratio_1m_met"] = result["ratio_1m"] <= 1.5
    summary["target_rpc_paced_p99_met"] = result["rpc_paced_p99_ms_100k"] <= 10.0
    summary["target_rpc_p99_worst_met"] = result["rpc_p99_ms_100k_worst"] <= 10.0
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
