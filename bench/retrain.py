"""Nightly retrain benchmark (issue 6): export, training, evaluation and publish on synthetic
interactions with taste clusters (`app.demo_data.generate_interactions`), by default at 1M and
10M rows.

    python bench/retrain.py [--sizes 1000000,10000000] [--epochs 30] [--components 64]
                            [--threads 2]

Per size: a fresh database on a real PostgreSQL (`tests.servers.start_postgres`) is loaded
with the rows by `COPY ... FROM STDIN` (CSV written by pyarrow; not timed), the model service
(`python -m app.lightfm_main`) is started on a free port over an empty model store, and the
retrain runs in a child process exactly as `feedrec retrain --now` builds it
(`app.composition.worker.build_worker`): export to a local parquet folder, read the 90-day window
back, train LightFM (WARP, 64 components, 30 epochs, 2 threads), evaluate the newest day
(10,000 sampled users), gate, publish (store the artifact, LoadModel, move the pointer,
DescribeModel). Stage times come from the run's progress callbacks; peak memory is the
child's VmHWM (the worker process alone: not the model service, not PostgreSQL).

`--interactions N` (e.g. 100000000) measures instead the job over a 90-day window of N events
whose older 89 days are already exported (`bench/window_export.py` writes them a day at a
time) and whose newest day is exported from PostgreSQL by the job itself; its JSON carries
`retrain_<N>_s` (the job end to end) and `retrain_<N>_peak_rss_mb` (the job's process), e.g.
`retrain_100m_s`, and the seconds of every stage. Targets at 100M: <= 2,700 s, <= 12,288 MB.

Human lines, then one JSON line for the largest size (`rows`, `export_s`, `read_s`,
`train_s`, `evaluate_s`, `publish_s`, `total_s`, `peak_rss_mb`, plus every size under
`sizes`). Targets: 10M rows end to end <= 600 s and <= 4096 MB on 2 cores. Exit 1 when a run
does not succeed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `tests` is not an installed package
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import psycopg2  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402

from adapters.lightfm.interactions import INTERACTION_TYPES  # noqa: E402
from adapters.sql.migrations import upgrade_database  # noqa: E402
from app.demo_data import SyntheticInteractions, generate_interactions  # noqa: E402
from bench.window_export import WINDOW_DAYS, newest_day, write_exported_days  # noqa: E402
from domain.retrain import Stage  # noqa: E402
from tests.servers import free_port, start_postgres, wait_for_port  # noqa: E402

DAYS = 30
#: users, videos per size: about 100 events per user, videos a tenth as many as events / 20
SHAPES = {1_000_000: (10_000, 20_000), 10_000_000: (100_000, 50_000)}
COPY_COLUMNS = (
    "event_id",
    "user_id",
    "video_id",
    "interaction_type",
    "watch_time_ms",
    "occurred_at",
    "received_at",
)
COPY_BATCH = 1_000_000
COPY = f"COPY user_interactions ({', '.join(COPY_COLUMNS)}) FROM STDIN WITH (FORMAT csv)"


def peak_rss_mb() -> float:
    """This process's peak resident set size, MiB. VmHWM, not ru_maxrss: Linux carries
    ru_maxrss over exec, so a child would report the parent's peak at fork if that was
    higher (here: the parent that generated ten million rows)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class StageClock:
    """A `RetrainProgress` that times each stage (seconds, monotonic)."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.seconds: dict[str, float] = {}
        self.ok: dict[str, bool] = {}
        self.peak_mb: dict[str, float] = {}  # the process's peak RSS when the stage ended

    def stage_started(self, stage: Stage) -> None:
        self.started[stage.value] = time.monotonic()

    def rows(self, stage: Stage, total: int) -> None:
        return None

    def stage_finished(self, stage: Stage, ok: bool) -> None:
        self.seconds[stage.value] = time.monotonic() - self.started[stage.value]
        self.ok[stage.value] = ok
        self.peak_mb[stage.value] = peak_rss_mb()


def child() -> int:
    """The retrain itself, in a process of its own (settings from the environment)."""
    from app.composition.worker import build_worker
    from app.settings import Settings
    from domain.retrain import run_to_json

    settings = Settings.from_env()
    clock = StageClock()
    started = time.monotonic()
    composition = build_worker(settings)
    try:
        run = composition.retrain.run(composition.clock.now(), clock)
    finally:
        composition.close()
    total = time.monotonic() - started
    print(
        json.dumps(
            {
                "run": run_to_json(run),
                "stages": clock.seconds,
                "peak_mb_after": clock.peak_mb,
                "total_s": total,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )
    return 0


def seed(database_url: str, libpq_url: str, data: SyntheticInteractions) -> float:
    """Load `data` into `user_interactions` with COPY; returns the seconds it took."""
    started = time.monotonic()
    upgrade_database(database_url)
    types = pa.array([kind.value for kind in INTERACTION_TYPES])
    users, videos = pa.array(data.user_ids.tolist()), pa.array(data.video_ids.tolist())
    connection = psycopg2.connect(libpq_url)
    try:
        with connection, connection.cursor() as cursor:
            for start in range(0, len(data), COPY_BATCH):
                count = min(COPY_BATCH, len(data) - start)
                part = slice(start, start + count)
                ids = pc.cast(pa.array(np.arange(start, start + count)), pa.string())
                moments = pa.array(data.occurred_at_ms[part], type=pa.timestamp("ms", tz="UTC"))
                table = pa.table(
                    {
                        "event_id": pc.binary_join_element_wise("b", ids, ""),
                        "user_id": users.take(pa.array(data.user_codes[part])),
                        "video_id": videos.take(pa.array(data.video_codes[part])),
                        "interaction_type": types.take(pa.array(data.type_codes[part])),
                        "watch_time_ms": pa.array(data.watch_time_ms[part]),
                        "occurred_at": moments,
                        "received_at": moments,
                    }
                )
                buffer = io.BytesIO()
                pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False))
                buffer.seek(0)
                cursor.copy_expert(COPY, buffer)
            cursor.execute("ANALYZE user_interactions")
    finally:
        connection.close()
    return time.monotonic() - started


def measure(size: int, args: argparse.Namespace, postgres: Any, tmp: Path) -> dict[str, Any]:
    n_users, n_videos = SHAPES.get(size, (max(size // 100, 10), max(size // 200, 10)))
    end = datetime.now(UTC) - timedelta(hours=1)
    started = time.monotonic()
    data = generate_interactions(n_users, n_videos, size, days=DAYS, seed=6, end=end)
    generate_s = time.monotonic() - started
    database = postgres.create_database("bench_retrain")
    work = tmp / f"size-{size}"
    with contextlib.ExitStack() as stack:
        stack.callback(postgres.drop_database, database)
        seed_s = seed(postgres.url_for(database), postgres.libpq_url(database), data)
        del data
        result = run_job(postgres.url_for(database), work, args)
    stages, run = result["stages"], result["run"]
    return {
        "rows": size,
        "users": n_users,
        "videos": n_videos,
        "status": run["status"],
        "error": run["error"],
        "rows_exported": run["rows_exported"],
        "rows_trained": run["rows_trained"],
        "export_s": round(stages.get("export", 0.0), 2),
        "read_s": round(stages.get("read", 0.0), 2),
        "train_s": round(stages.get("train", 0.0), 2),
        "evaluate_s": round(stages.get("evaluate", 0.0), 2),
        "refit_s": round(stages.get("refit", 0.0), 2),
        "publish_s": round(stages.get("publish", 0.0) + stages.get("confirm", 0.0), 2),
        "stages_s": {name: round(seconds, 2) for name, seconds in stages.items()},
        "total_s": round(result["total_s"], 2),
        "peak_rss_mb": round(result["peak_rss_mb"], 1),
        "peak_rss_mb_after_stage": {k: round(v) for k, v in result["peak_mb_after"].items()},
        "candidate_metrics": run["candidate_metrics"],
        "generate_s": round(generate_s, 2),
        "seed_s": round(seed_s, 2),
        # The run record's note: the gate's verdict, what the search tried and picked.
        "note": run["note"],
    }


def measure_window(rows: int, args: argparse.Namespace, postgres: Any, tmp: Path) -> dict[str, Any]:
    """`bench.window_export`'s 90-day window of `rows` events: 89 days written to the export,
    the newest in PostgreSQL; then the nightly job over it."""
    per_day = rows // WINDOW_DAYS
    shape = (max(rows // 100, 10), max(rows // 500, 10))
    end = datetime.now(UTC) - timedelta(minutes=1)
    work = tmp / f"window-{rows}"
    started = time.monotonic()
    last_id = write_exported_days(
        work / "exports", shape, per_day, end - timedelta(days=1), WINDOW_DAYS - 1
    )
    write_s = time.monotonic() - started
    print(f"wrote {last_id:,} rows as 89 days of export in {write_s:.1f} s", flush=True)
    database = postgres.create_database("bench_window")
    with contextlib.ExitStack() as stack:
        stack.callback(postgres.drop_database, database)
        url, libpq = postgres.url_for(database), postgres.libpq_url(database)
        upgrade_database(url)
        connection = psycopg2.connect(libpq)
        try:
            with connection, connection.cursor() as cursor:
                # As if earlier nights exported the older days: ids continue after theirs.
                cursor.execute(
                    "SELECT setval(pg_get_serial_sequence('user_interactions', 'id'), %s)",
                    (last_id,),
                )
                cursor.execute(
                    "INSERT INTO export_watermarks (name, last_id, updated_at) "
                    "VALUES ('user_interactions', %s, now())",
                    (last_id,),
                )
        finally:
            connection.close()
        newest = newest_day(shape, per_day, end)
        seed_s = seed(url, libpq, newest)
        del newest
        result = run_job(url, work, args)
    stages, run = result["stages"], result["run"]
    label = _label(rows)
    return {
        "interactions": rows,
        "users": shape[0],
        "videos": shape[1],
        "status": run["status"],
        "error": run["error"],
        "rows_exported": run["rows_exported"],
        "rows_trained": run["rows_trained"],
        "stages_s": {name: round(seconds, 2) for name, seconds in stages.items()},
        "peak_rss_mb_after_stage": {k: round(v) for k, v in result["peak_mb_after"].items()},
        "candidate_metrics": run["candidate_metrics"],
        "note": run["note"],
        "write_export_s": round(write_s, 2),
        "seed_newest_day_s": round(seed_s, 2),
        f"retrain_{label}_s": round(result["total_s"], 2),
        f"retrain_{label}_peak_rss_mb": round(result["peak_rss_mb"], 1),
    }


def _label(rows: int) -> str:
    return f"{rows // 1_000_000}m" if rows >= 1_000_000 else f"{rows // 1000}k"


def run_job(database_url: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The nightly job in a child process of its own (`child`), next to a model service
    started for it; returns the child's JSON line."""
    port = free_port()
    env = {
        **os.environ,
        "FEEDREC_DATA_DIR": str(work),
        "DATABASE_URL": database_url,
        "MODEL_STORE_URI": str(work / "models"),
        "EXPORT_URI": str(work / "exports"),
        "EXPORT_LAG_S": "0",
        "LIGHTFM_BIND": f"127.0.0.1:{port}",
        "LIGHTFM_TARGET": f"127.0.0.1:{port}",
        "LIGHTFM_POLL_INTERVAL_S": "0",
        "TRAIN_EPOCHS": str(args.epochs),
        "TRAIN_COMPONENTS": str(args.components),
        "TRAIN_THREADS": str(args.threads),
        "LOG_LEVEL": "WARNING",
    }
    work.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        with (work / "lightfm.log").open("wb") as log:
            service = subprocess.Popen(
                [sys.executable, "-m", "app.lightfm_main"], cwd=REPO_ROOT, env=env, stderr=log
            )
        stack.callback(_stop, service)
        wait_for_port("127.0.0.1", port, timeout=60, what="model service")
        done = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"the retrain child failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="nightly retrain benchmark (issue 6)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="1000000,10000000", help="comma-separated row counts")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--components", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--interactions",
        type=int,
        default=0,
        help="instead of --sizes: a 90-day window of this many events, 89 days already "
        "exported, the newest in PostgreSQL (bench/window_export.py)",
    )
    args = parser.parse_args(argv)
    if args.child:
        return child()
    if args.interactions:
        return window_main(args)
    sizes = sorted(int(size) for size in args.sizes.split(","))
    print(f"load average before: {os.getloadavg()}", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-retrain-") as folder:
        postgres = start_postgres()
        try:
            print(f"postgres: {postgres.describe()}", flush=True)
            for size in sizes:
                result = measure(size, args, postgres, Path(folder))
                results.append(result)
                print(
                    f"{size:>11,} rows: export {result['export_s']} s, read {result['read_s']} s,"
                    f" train {result['train_s']} s, evaluate {result['evaluate_s']} s, publish "
                    f"{result['publish_s']} s, total {result['total_s']} s, peak RSS "
                    f"{result['peak_rss_mb']} MB; {result['status']} "
                    f"(seeding took {result['seed_s']} s)",
                    flush=True,
                )
                print(f"  run note: {result['note']}", flush=True)
        finally:
            postgres.close()
    print(f"load average after: {os.getloadavg()}", flush=True)
    largest = results[-1]
    summary = {
        **{key: value for key, value in largest.items() if key != "candidate_metrics"},
        "metrics": largest["candidate_metrics"],
        "epochs": args.epochs,
        "components": args.components,
        "threads": args.threads,
        "cores": os.cpu_count(),
        "sizes": results,
    }
    print(json.dumps(summary), flush=True)
    return 0 if all(result["status"] == "succeeded" for result in results) else 1


def window_main(args: argparse.Namespace) -> int:
    print(f"load average before: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-retrain-window-") as folder:
        postgres = start_postgres()
        try:
            result = measure_window(args.interactions, args, postgres, Path(folder))
        finally:
            postgres.close()
    print(f"load average after: {os.getloadavg()}", flush=True)
    label = _label(args.interactions)
    stages = ", ".join(f"{name} {seconds} s" for name, seconds in result["stages_s"].items())
    print(
        f"{args.interactions:,} interactions over {WINDOW_DAYS} days: {stages}; total "
        f"{result[f'retrain_{label}_s']} s, peak RSS of the job "
        f"{result[f'retrain_{label}_peak_rss_mb']} MB; {result['status']}",
        flush=True,
    )
    print(json.dumps({**result, "cores": os.cpu_count()}), flush=True)
    return 0 if result["status"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
