"""Scale benchmark: approximate retrieval over a large catalogue, and model-service replicas.

    python bench/scale.py                      (1M videos: about 5 minutes on 2 shared cores)
    python bench/scale.py --items 10000000     (the issue's 10M x 64: ~10 GB free, ~11 min quiet)

On a synthetic catalogue of `--items` videos x 64 components drawn around planted tastes
(`tests.integration.lightfm_support.clustered_artifact`):
1. builds the candidate index as the nightly job does (`adapters.lightfm.ann.with_index`, all
   cores): time, peak memory added, bytes;
2. recall@50 of the approximate path against the exact scan on `--viewers` viewers, and the
   in-process `rank` latency of both;
3. Recommend p50/p99 through the real `lightfm` process (one core of BLAS/faiss) paced at 200
   calls/s, each call excluding 500 videos;
4. closed-loop throughput of two `lightfm` processes behind one round-robin channel against one
   (`replica_figures`: each replica pinned to a core, an exact catalogue of `--replica-items`
   videos, 1M by default, so each call's model work dwarfs the load generator's, whose cores
   used are printed; then the same at 200k videos).
   `--replicas-only` runs this stage alone.

Memory at 10M (what keeps it under 8 GB): the catalogue is drawn a million rows at a time; the
index is built from a million ranking vectors at a time; the exact reference of the recall is
computed by blocks of items for all viewers at once (the exact scan's own latency is timed on
`EXACT_TIMED` viewers); the artifact is written to disk as a stream and this process drops its
copies before the model process loads its own. Measured at 10M (2026-12-02, index of 4-bit
codes): this process peaked at 7.8 GB, the model process at 7.7 GB while loading, one after the
other (with the earlier IVF-Flat index: 15.8 and 14.1 GB).

The retrain over 100M interactions is `bench/retrain.py --interactions 100000000`.
Human-readable lines, then one JSON line. Exits non-zero when an RPC fails.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # `tests` is not an installed package
    sys.path.insert(0, str(REPO_ROOT))

import faiss  # noqa: E402
import grpc  # noqa: E402
import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

from adapters.lightfm.ann import CandidateIndex, list_count, ranking_vectors, with_index  # noqa: E402
from adapters.lightfm.artifact import ModelArtifact  # noqa: E402
from adapters.lightfm.channel import open_channel  # noqa: E402
from adapters.lightfm.client import DEFAULT_CHANNEL_OPTIONS  # noqa: E402
from adapters.lightfm.scorer import LoadedModel  # noqa: E402
from adapters.model_store.local import LocalModelStore  # noqa: E402
from bench.scoring import LightfmProcess, _wait_serving, drive  # noqa: E402 (its import: one BLAS thread per lightfm process)
from proto.lightfm.v2025_9 import recommender_pb2 as pb  # noqa: E402
from proto.lightfm.v2025_9 import recommender_pb2_grpc as pb_grpc  # noqa: E402
from tests.integration.lightfm_support import clustered_artifact  # noqa: E402

TOP = 50
#: Exact catalogues of the replica test: the headline (the exact path's default maximum is
#: 1.2M) and a smaller one where the load generator's share of the cores shows.
REPLICA_ITEMS = 1_000_000
REPLICA_ITEMS_SMALL = 200_000
EXCLUDED = 500
PACED_RATE = 200.0
CALLERS = 8
#: Items per block of the exact reference: [viewers, block] float32 scores (400 MB at 1,000).
EXACT_BLOCK = 100_000
#: Viewers whose exact `rank` is timed (each a full pass over the catalogue: ~0.3 s at 10M).
EXACT_TIMED = 100
#: A lightfm process reads, parses and indexes a 10M artifact in minutes on a busy machine.
LOAD_TIMEOUT_S = 900.0
#: Lists probed per query tried on the built index (for the record: the index keeps the count
#: its build chose, LIGHTFM_ANN_NPROBE's default).
NPROBES = (64, 96, 128, 160, 192, 256)


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def process_memory_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) MB of process `pid`."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    resident, peak = (int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM"))
    return resident, peak


def release_memory() -> None:
    """Hand freed memory back to the system: without `malloc_trim` this process kept ~4 GB of
    freed heap after the 10M phases, and the model process loading next was OOM-killed."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)


def reset_peak_rss() -> None:
    # Linux: "5" resets VmHWM to the current RSS, so the next peak is the build's own.
    Path("/proc/self/clear_refs").write_text("5")


def exact_reference(artifact: ModelArtifact, viewers: int) -> list[set[int]]:
    """Per viewer u000000..., the item indices of the exact scan's top `TOP` (seen videos left
    out, as `LoadedModel.rank` does), computed for all viewers at once by blocks of items: one
    [viewers, block] product per block instead of `viewers` passes over the whole catalogue."""
    k = artifact.no_components
    users = np.ones((viewers, k + 1), dtype=np.float32)
    users[:, :k] = artifact.user_embeddings[:viewers]
    best_scores = np.full((viewers, 0), -np.inf, dtype=np.float32)
    best_items = np.empty((viewers, 0), dtype=np.int64)
    n = len(artifact.item_ids)
    for start in range(0, n, EXACT_BLOCK):
        stop = min(start + EXACT_BLOCK, n)
        scores = users @ ranking_vectors(artifact, slice(start, stop)).T
        for viewer in range(viewers):
            seen = artifact.seen_by(viewer)
            inside = seen[(seen >= start) & (seen < stop)] - start
            scores[viewer, inside] = -np.inf
        merged_scores = np.concatenate((best_scores, scores), axis=1)
        merged_items = np.concatenate(
            (best_items, np.broadcast_to(np.arange(start, stop), (viewers, stop - start))), axis=1
        )
        keep = np.argpartition(-merged_scores, TOP - 1, axis=1)[:, :TOP]
        best_scores = np.take_along_axis(merged_scores, keep, axis=1)
        best_items = np.take_along_axis(merged_items, keep, axis=1)
    return [set(row.tolist()) for row in best_items]


def recall_by_nprobe(
    artifact: ModelArtifact, truth: list[set[int]]
) -> tuple[npt.NDArray[np.uint8], dict[int, float], int]:
    """Recall@TOP of the approximate path's candidates at each of NPROBES lists probed and at
    the probe count the build chose (LIGHTFM_ANN_NPROBE's default), which the returned index
    keeps. The path re-scores its candidates exactly, so its top-TOP holds every true one it
    was offered. A fixed probe count loses recall as the catalogue grows (its lists grow with
    sqrt(n)); the default grows with the lists."""
    assert artifact.ann_index is not None
    k = artifact.no_components
    index = CandidateIndex(artifact.ann_index, len(artifact.item_ids), k + 1)
    built = index.nprobe
    recalls: dict[int, float] = {}
    for nprobe in sorted({*NPROBES, built}):
        index.nprobe = nprobe
        found = []
        for viewer, expected in enumerate(truth):
            query = np.ones(k + 1, dtype=np.float32)
            query[:k] = artifact.user_embeddings[viewer]
            ids = index.candidates(query, TOP, len(artifact.seen_by(viewer)))
            found.append(len(expected & set(ids.tolist())) / TOP)
        recalls[index.nprobe] = float(np.mean(found))
    index.nprobe = built
    return index.to_bytes(), recalls, built


def recall_and_latency(
    artifact: ModelArtifact, truth: list[set[int]], viewers: int
) -> dict[str, float]:
    """Recall@TOP of the approximate path (the artifact carries its index) against the exact
    scan, and in-process `rank` latencies of both. One scorer at a time: each holds the item
    matrix and id maps (~4 GB at 10M)."""
    exact = LoadedModel(replace(artifact, ann_index=None))
    exact_ms, agreement = [], []
    for i in range(min(viewers, EXACT_TIMED)):
        started = time.perf_counter()
        answer = exact.rank(f"u{i:06d}", TOP).items
        exact_ms.append((time.perf_counter() - started) * 1000)
        # The blockwise reference is the exact scan's answer (but for float rounding).
        agreement.append(len({int(video[1:]) for video, _ in answer} & truth[i]) / TOP)
    del exact
    approximate = LoadedModel(artifact)
    recalls, approximate_ms = [], []
    for i in range(viewers):
        started = time.perf_counter()
        found = {int(video[1:]) for video, _ in approximate.rank(f"u{i:06d}", TOP).items}
        approximate_ms.append((time.perf_counter() - started) * 1000)
        recalls.append(len(truth[i] & found) / TOP)
    return {
        "ann_recall_at_50": float(np.mean(recalls)),
        "ann_recall_at_50_min": float(np.min(recalls)),
        "exact_reference_agreement": float(np.mean(agreement)),
        "rank_exact_p50_ms": float(np.percentile(exact_ms, 50)),
        "rank_ann_p50_ms": float(np.percentile(approximate_ms, 50)),
        "rank_ann_p99_ms": float(np.percentile(approximate_ms, 99)),
    }


def store_artifact(artifact: ModelArtifact, root: Path) -> None:
    """Publish `artifact` in a local store at `root`, written to disk as a stream first (a
    `to_bytes()` at 10M would hold ~12 GB: the buffer and its copy)."""
    staged = root / "staged.npz"
    with staged.open("wb") as stream:
        artifact.write(stream)
    store = LocalModelStore(root / "store")
    store.put(artifact.info.version, staged.read_bytes(), artifact.info)
    store.publish(artifact.info.version)
    staged.unlink()


def requests_for(items: int, viewers: int, seed: int = 5) -> list[pb.RecommendRequest]:
    """200 Recommend requests over `viewers`, each excluding EXCLUDED random videos."""
    rng = np.random.default_rng(seed)
    return [
        pb.RecommendRequest(
            user_id=f"u{i % viewers:06d}",
            limit=TOP,
            exclude_video_ids=[f"v{j:07d}" for j in rng.choice(items, EXCLUDED).tolist()],
        )
        for i in range(200)
    ]


def start_serving(store_root: Path, count: int) -> list[LightfmProcess]:
    """`count` lightfm processes serving the store's model, started one after the other (a
    process loading a 10M model briefly holds twice what it keeps)."""
    servers: list[LightfmProcess] = []
    try:
        for _ in range(count):
            servers.append(LightfmProcess(store_root))
            with grpc.insecure_channel(f"127.0.0.1:{servers[-1].port}") as channel:
                stub = pb_grpc.RecommenderStub(channel)
                deadline = time.monotonic() + LOAD_TIMEOUT_S
                while True:
                    try:
                        stub.DescribeModel(pb.DescribeModelRequest(), timeout=5)
                        break
                    except grpc.RpcError:
                        code = servers[-1].process.poll()
                        if code is not None:  # -9: most likely the OOM killer
                            raise RuntimeError(f"lightfm exited with {code} loading") from None
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.5)
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


def stopped(servers: list[LightfmProcess], failures: list[str]) -> None:
    codes = [server.stop() for server in servers]
    if failures or any(codes):
        print(f"FAILED: {len(failures)} failed RPCs {failures[:3]}, server exits {codes}")
        raise SystemExit(1)


def paced_figures(
    store_root: Path, requests: list[pb.RecommendRequest], seconds: float
) -> dict[str, float]:
    """Recommend through one lightfm process, paced at PACED_RATE, with EXCLUDED exclusions."""
    started = time.perf_counter()
    servers = start_serving(store_root, 1)
    load_s = time.perf_counter() - started
    failures: list[str] = []
    try:
        one = open_channel(f"127.0.0.1:{servers[0].port}", DEFAULT_CHANNEL_OPTIONS)
        stub = pb_grpc.RecommenderStub(one)
        drive(stub, requests, CALLERS, 2.0, None)  # warm-up
        paced, failed, _, _ = drive(stub, requests, CALLERS, seconds, PACED_RATE)
        failures += failed
        one.close()
        replica_rss_mb, replica_peak_mb = process_memory_mb(servers[0].process.pid)
    finally:
        stopped(servers, failures)
    figures = {
        "rpc_p50_ms": float(np.percentile(paced, 50)),
        "rpc_p99_ms": float(np.percentile(paced, 99)),
        "replica_load_s": load_s,
        "replica_rss_mb": replica_rss_mb,
        "replica_peak_rss_mb": replica_peak_mb,
    }
    print(
        f"Recommend paced at {PACED_RATE:.0f}/s with {EXCLUDED} exclusions: "
        f"p50 {figures['rpc_p50_ms']:.2f} ms, p99 {figures['rpc_p99_ms']:.2f} ms "
        f"({len(paced)} calls)"
    )
    print(
        f"one lightfm process: serving after {load_s:.0f} s, {replica_rss_mb:.0f} MB resident, "
        f"peak {replica_peak_mb:.0f} MB"
    )
    return figures


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process `pid` has used (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def replica_figures(items: int, viewers: int, seconds: float) -> dict[str, float]:
    """Closed-loop throughput of two `lightfm` replicas behind one round-robin channel against
    one, where the replicas, not the load generator, are the bottleneck.

    - Each replica is pinned to a core of its own (`sched_setaffinity`), so one replica is
      bounded by one core and two by two; the load generator (this process, 8 threads) is not
      pinned and its CPU is measured: what it uses comes out of the replicas' cores.
    - The catalogue is an exact scan of `items` videos (no index). The headline figure uses
      1M videos, the largest catalogue the exact path serves by default: a call costs a replica
      ~23 ms of CPU and the generator ~0.6 ms, so the generator takes ~0.05 of the 2 cores. Its
      260 MB matrix is read from memory on every call, yet a replica's calls per CPU-second fell
      only ~4% with both cores busy (2026-12-02). The second figure, at 200k videos (~5 ms a
      call), shows what the generator's larger share (~0.13 cores) costs the ratio.
    - The same requests (500 exclusions each), the same generator, the same callers for 1 and
      2 replicas. Printed: each replica's cores used (close to 1.0 means saturated) and the
      generator's.
    """
    artifact = clustered_artifact(items, viewers, seen_per_user=20, seed=13)
    requests = requests_for(items, viewers, seed=9)
    cores = sorted(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as folder:
        store_artifact(artifact, Path(folder))
        del artifact
        root = Path(folder) / "store"
        servers = [LightfmProcess(root), LightfmProcess(root)]
        failures: list[str] = []
        runs: dict[int, dict[str, float]] = {}
        try:
            for server, core in zip(servers, cores, strict=False):
                os.sched_setaffinity(server.process.pid, {core})
                for task in Path(f"/proc/{server.process.pid}/task").iterdir():
                    os.sched_setaffinity(int(task.name), {core})
            ports = [server.port for server in servers]
            channels = {
                1: open_channel(f"127.0.0.1:{ports[0]}", DEFAULT_CHANNEL_OPTIONS),
                2: open_channel(",".join(f"127.0.0.1:{p}" for p in ports), DEFAULT_CHANNEL_OPTIONS),
            }
            for port in ports:
                with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                    _wait_serving(pb_grpc.RecommenderStub(channel))
            drive(pb_grpc.RecommenderStub(channels[2]), requests, CALLERS, 2.0, None)  # warm-up
            for count in (1, 2):
                before = [cpu_seconds(server.process.pid) for server in servers]
                done, failed, elapsed, generator_cpu = drive(
                    pb_grpc.RecommenderStub(channels[count]), requests, CALLERS, seconds, None
                )
                used = [
                    (cpu_seconds(server.process.pid) - start) / elapsed
                    for server, start in zip(servers, before, strict=True)
                ]
                failures += failed
                runs[count] = {
                    "rps": len(done) / elapsed,
                    "generator_cores": generator_cpu / elapsed,
                    "replica_cores": sum(used[:count]),
                }
                print(
                    f"  {count} replica(s): {runs[count]['rps']:.0f} calls/s; replicas used "
                    f"{' + '.join(f'{u:.2f}' for u in used[:count])} cores, the load generator "
                    f"{runs[count]['generator_cores']:.2f} cores",
                    flush=True,
                )
            for channel in channels.values():
                channel.close()
        finally:
            codes = [server.stop() for server in servers]
    if failures or any(codes):
        print(f"FAILED: {len(failures)} failed RPCs {failures[:3]}, server exits {codes}")
        raise SystemExit(1)
    ratio = runs[2]["rps"] / runs[1]["rps"]
    # Calls per second of replica CPU: what a replica does with a core when it gets one. The
    # cores the replicas did not get went to the generator and to other work on the machine.
    per_core = [runs[n]["rps"] / runs[n]["replica_cores"] for n in (1, 2)]
    others = len(cores) - runs[2]["replica_cores"] - runs[2]["generator_cores"]
    print(
        f"replicas on an exact {items:,}-video catalogue, {CALLERS} callers: x{ratio:.2f} "
        f"(2 vs 1; each replica pinned to one of {len(cores)} cores); calls per replica "
        f"core-second {per_core[0]:.0f} with 1, {per_core[1]:.0f} with 2 "
        f"(x{2 * per_core[1] / per_core[0]:.2f} if each got a whole core); with 2, "
        f"{others:.2f} cores went to other processes"
    )
    return {
        "replica_items": items,
        "rps_1_replica": runs[1]["rps"],
        "rps_2_replicas": runs[2]["rps"],
        "replicas_2_vs_1": ratio,
        "replica_cores_1": runs[1]["replica_cores"],
        "replica_cores_2": runs[2]["replica_cores"],
        "loadgen_cores_1_replica": runs[1]["generator_cores"],
        "loadgen_cores_2_replicas": runs[2]["generator_cores"],
        "other_cores_2_replicas": others,
        "calls_per_replica_core_s_1": per_core[0],
        "calls_per_replica_core_s_2": per_core[1],
    }


def both_replica_figures(items: int, viewers: int, seconds: float) -> dict[str, float]:
    """`replica_figures` on `items` videos (the headline keys), then on REPLICA_ITEMS_SMALL
    (the same keys ending `_200k`)."""
    figures = replica_figures(items, viewers, seconds)
    small = replica_figures(REPLICA_ITEMS_SMALL, viewers, seconds)
    label = f"_{REPLICA_ITEMS_SMALL // 1000}k"
    return figures | {key + label: value for key, value in small.items()}


def indexed_catalogue(items: int, viewers: int) -> tuple[ModelArtifact, float, float]:
    """The synthetic catalogue with its index, the build's seconds and peak memory added (MB)."""
    artifact = clustered_artifact(items, viewers, seen_per_user=20, seed=11)
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # the nightly job builds on every core
    reset_peak_rss()
    before_mb = peak_rss_mb()
    started = time.perf_counter()
    indexed = with_index(artifact)
    build_s = time.perf_counter() - started
    build_mb = peak_rss_mb() - before_mb
    faiss.omp_set_num_threads(1)
    return indexed, build_s, build_mb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--viewers", type=int, default=1_000)
    parser.add_argument("--seconds", type=float, default=10.0, help="per RPC measurement")
    parser.add_argument(
        "--replica-items",
        type=int,
        default=REPLICA_ITEMS,
        help="exact catalogue of the replica test's headline figure",
    )
    parser.add_argument(
        "--replicas-only", action="store_true", help="only the replica test (2 vs 1)"
    )
    args = parser.parse_args()
    if args.replicas_only:
        print(json.dumps(both_replica_figures(args.replica_items, args.viewers, args.seconds)))
        return 0
    label = f"{args.items // 1_000_000}m" if args.items >= 1_000_000 else f"{args.items // 1000}k"

    indexed, build_s, build_mb = indexed_catalogue(args.items, args.viewers)
    assert indexed.ann_index is not None
    index_mb = indexed.ann_index.nbytes / 1e6
    print(
        f"index over {args.items:,} videos x 64: built in {build_s:.1f} s, "
        f"peak memory +{build_mb:.0f} MB, {index_mb:.0f} MB stored"
    )
    result: dict[str, float | int | str] = {
        "items": args.items,
        "index_build_s": build_s,
        "index_build_peak_mb": build_mb,
        "index_mb": index_mb,
    }
    truth = exact_reference(indexed, args.viewers)
    blob, recalls, nprobe = recall_by_nprobe(indexed, truth)
    indexed = replace(indexed, ann_index=blob)
    del blob
    print(
        "recall@50 by lists probed: "
        + ", ".join(f"{n}: {r:.3f}" for n, r in recalls.items())
        + f"; the index probes {nprobe} of {list_count(args.items):,} lists (the default)"
    )
    result["ann_nprobe"] = nprobe
    result |= {f"ann_recall_at_50_nprobe_{n}": r for n, r in recalls.items()}
    figures = recall_and_latency(indexed, truth, args.viewers)
    result |= figures
    print(
        f"recall@50 vs the exact scan on {args.viewers} viewers: {figures['ann_recall_at_50']:.3f}"
        f" (worst {figures['ann_recall_at_50_min']:.2f}); rank p50 exact "
        f"{figures['rank_exact_p50_ms']:.2f} ms, approximate {figures['rank_ann_p50_ms']:.2f} ms"
        f" (blockwise reference = exact rank on {figures['exact_reference_agreement']:.1%}"
        f" of the top-{TOP} of {EXACT_TIMED} viewers)"
    )
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as folder:
        store_artifact(indexed, Path(folder))
        del indexed  # this process's copies go before the model process loads its own
        release_memory()
        rpc = paced_figures(
            Path(folder) / "store", requests_for(args.items, args.viewers), args.seconds
        )
    result |= rpc
    result[f"rpc_p99_ms_{label}"] = rpc["rpc_p99_ms"]
    result |= both_replica_figures(args.replica_items, args.viewers, args.seconds)
    result["parent_peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
