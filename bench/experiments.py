"""Benchmark of the experiment readout (docs/experiments.md).

1. 100 simulated A/A experiments read daily for 14 days: the share that ever declares a
   winner on like rate (`aa_false_positive_rate`, want <= 0.05).
2. 100 A/B experiments with a +5% lift on like rate: the share detected by day 14
   (`ab_power`) and the median day of detection.
3. The readout's run time and peak memory on parquet exports of `--interactions` and
   `--impressions` rows (want <= 120 s and <= 4 GB at 10M / 50M).

How 3 is measured: the exports are generated and written a day at a time (one day's rows
in memory), then the readout runs alone in a fresh process (`spawn`), which times itself
(wall and CPU seconds, all threads) and reads its own peak resident memory from
/proc/self/status (`VmHWM`: the high-water mark of the new process image only). Not
`ru_maxrss`: Linux carries the parent's peak into a spawned child's, so it would report
the generator's memory. The generator's own time and peak are reported beside it.

Viewers arrive over the days (`--viewers-per-day` per variant), get items every day they come
back, like each with a viewer-specific rate (beta-distributed: viewers differ, so their
events are correlated). Last line: one JSON object.

    python bench/experiments.py                      # small: 1M impressions, 200k interactions
    python bench/experiments.py --impressions 50000000 --interactions 10000000 \
        --viewers 2000000                            # the full run
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from adapters.experiment_data import ParquetExperimentData
from adapters.experiment_stats import ScipyExperimentStatistics
from adapters.parquet_export import EXPORT_SCHEMA, IMPRESSION_SCHEMA
from domain.experiment_report import ExperimentReporter, Moments, VariantDay
from domain.experiments import Experiment, Variant

START = date(2026, 12, 1)
DAYS = 14
EXPERIMENT = Experiment("bench", (Variant("control", 50), Variant("treatment", 50)))


class SimulatedData:
    """`ExperimentData` for one simulated experiment: like rate only."""

    def __init__(self, rng: np.random.Generator, per_day: int, lift: float) -> None:
        self._rows: list[VariantDay] = []
        for variant, factor in (("control", 1.0), ("treatment", 1.0 + lift)):
            n = per_day * DAYS
            arrival = np.repeat(np.arange(DAYS), per_day)
            rate = rng.beta(2, 14, n) * factor  # mean like rate 0.125, viewers differ
            items = np.zeros(n)
            likes = np.zeros(n)
            for day in range(DAYS):
                here = (arrival <= day) & (rng.random(n) < np.where(arrival == day, 1.0, 0.4))
                served = rng.poisson(20, n) * here
                items += served
                likes += rng.binomial(served, np.clip(rate, 0, 1))
                seen = arrival <= day
                y, x = likes[seen], items[seen]
                sums = (y.sum(), x.sum(), np.dot(y, y), np.dot(x, x), np.dot(x, y))
                moments = Moments(int(seen.sum()), *(float(s) for s in sums))
                self._rows.append(
                    VariantDay(
                        START + timedelta(days=day),
                        variant,
                        int(seen.sum()),
                        0,
                        0,
                        int(x.sum()),
                        {"like_rate": moments},
                    )
                )

    def variant_days(self, start: date, end: date) -> Sequence[VariantDay]:
        return [row for row in self._rows if start <= row.day <= end]


def sequential(runs: int, lift: float, per_day: int, seed: int) -> list[int | None]:
    """For each run, the first day (1-based) the always-valid interval excluded 0."""
    rng = np.random.default_rng(seed)
    stats = ScipyExperimentStatistics()
    found: list[int | None] = []
    for _ in range(runs):
        reporter = ExperimentReporter(EXPERIMENT, SimulatedData(rng, per_day, lift), stats)
        history = reporter.report(START, START + timedelta(days=DAYS - 1)).history
        days = [
            (d - START).days + 1
            for d, _, m, lift_read in history
            if m == "like_rate" and (lift_read.sequential_low > 0 or lift_read.sequential_high < 0)
        ]
        found.append(min(days) if days else None)
    return found


def readout_at_scale(impressions: int, interactions: int, viewers: int) -> dict[str, float]:
    """The readout's seconds, CPU seconds and peak RSS (GB) over generated parquet exports,
    and the generator's seconds and peak (see the module's docstring)."""
    rng = np.random.default_rng(5)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        began = time.perf_counter()
        per_day, events_per_day = impressions // DAYS, interactions // DAYS
        for day in range(DAYS):
            shown = _impressions(rng, per_day, viewers, day, first_id=day * per_day)
            _write(shown, root / "impressions", "served_at")
            _write(_interactions(rng, shown, events_per_day), root / "interactions", "occurred_at")
            del shown
        generated = {
            "generation_seconds": round(time.perf_counter() - began, 2),
            "generation_peak_rss_gb": round(_peak_rss_gb(), 2),
        }
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            return pool.apply(_timed_readout, (str(root),)) | generated


def _timed_readout(root: str) -> dict[str, float]:
    began, cpu = time.perf_counter(), time.process_time()
    data = ParquetExperimentData(f"{root}/impressions", f"{root}/interactions")
    ExperimentReporter(EXPERIMENT, data, ScipyExperimentStatistics()).report(
        START, START + timedelta(days=DAYS - 1)
    )
    return {
        "report_seconds": round(time.perf_counter() - began, 2),
        # CPU time (all threads): on a shared machine, the figure the load does not inflate
        "report_cpu_seconds": round(time.process_time() - cpu, 2),
        "report_peak_rss_gb": round(_peak_rss_gb(), 2),
    }


def _peak_rss_gb() -> float:
    """This process image's peak resident memory (`VmHWM`, kB), in GB."""
    status = Path("/proc/self/status").read_text()
    kilobytes = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(kilobytes.split()[1]) / 1024**2


def _text(values: npt.NDArray[np.int64], prefix: str) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(values), pa.string()), "")


def _impressions(
    rng: np.random.Generator, n: int, viewers: int, day: int, first_id: int
) -> pa.Table:
    base = np.datetime64(datetime.combine(START, datetime.min.time()), "us")
    users = rng.integers(0, viewers, n)
    offsets = ((day * 86_400 + rng.integers(0, 86_400, n)) * 1_000_000).astype("timedelta64[us]")
    ids = np.arange(first_id, first_id + n)
    return pa.table(
        {
            "impression_id": _text(ids, "i"),
            "user_id": _text(users, "u"),
            "feed_session_id": _text(users * 100 + day * 4 + rng.integers(0, 3, n), "s"),
            "page_number": pa.array(rng.integers(1, 5, n), pa.int32()),
            "rank": pa.array(rng.integers(1, 40, n), pa.int32()),
            "video_id": _text(rng.integers(0, 50_000, n), "v"),
            "score": pa.array(rng.random(n)),
            "source": pa.nulls(n, pa.string()),
            "algorithm": pa.array(np.full(n, "lightfm")),
            "fallback_reason": pa.nulls(n, pa.string()),
            "model_version": pa.nulls(n, pa.string()),
            "experiment_variant_id": pa.array(np.where(users % 2 == 0, "control", "treatment")),
            "personalization": pa.array(np.full(n, "model")),
            "served_at": pa.array(base + offsets).cast(IMPRESSION_SCHEMA.field("served_at").type),
            "page_id": pa.array(ids),
        },
        schema=IMPRESSION_SCHEMA,
    )


def _interactions(rng: np.random.Generator, shown: pa.Table, n: int) -> pa.Table:
    pick = pa.array(rng.integers(0, shown.num_rows, n))
    kinds = np.array(["view", "like", "skip", "complete", "hide"])
    return pa.table(
        {
            "event_id": _text(np.arange(n), "e"),
            "user_id": shown["user_id"].take(pick),
            "video_id": shown["video_id"].take(pick),
            "interaction_type": pa.array(kinds[rng.integers(0, 5, n)]),
            "watch_time_ms": pa.array(rng.integers(0, 60_000, n)),
            "occurred_at": shown["served_at"].take(pick),
            "received_at": shown["served_at"].take(pick),
            "feed_session_id": shown["feed_session_id"].take(pick),
            "algorithm": pa.nulls(n, pa.string()),
            "experiment_variant_id": pa.nulls(n, pa.string()),
            "recommendation_score": pa.nulls(n, pa.float64()),
            "interaction_id": pa.array(np.arange(n)),
        },
        schema=EXPORT_SCHEMA,
    )


def _write(table: pa.Table, root: Path, column: str) -> None:
    days = table[column].cast(pa.date32()).to_numpy(zero_copy_only=False)
    for day in np.unique(days):
        folder = root / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        mask = pa.array(days == day)
        n = len(list(folder.iterdir())) + 1  # a day gets a file from each day's batch it spans
        pq.write_table(table.filter(mask), folder / f"part-{n:012d}-{n:012d}.parquet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--viewers-per-day", type=int, default=2_000)
    parser.add_argument("--impressions", type=int, default=1_000_000)
    parser.add_argument("--interactions", type=int, default=200_000)
    parser.add_argument("--viewers", type=int, default=100_000)
    args = parser.parse_args()
    aa = sequential(args.runs, 0.0, args.viewers_per_day, seed=1)
    ab = sequential(args.runs, 0.05, args.viewers_per_day, seed=2)
    detected = [day for day in ab if day is not None]
    scale = readout_at_scale(args.impressions, args.interactions, args.viewers)
    result = {
        "aa_false_positive_rate": sum(d is not None for d in aa) / len(aa),
        "ab_power": len(detected) / len(ab),
        "ab_median_detection_day": statistics.median(detected) if detected else None,
        **scale,
        "impressions": args.impressions,
        "interactions": args.interactions,
        "viewers": args.viewers,
    }
    print(f"A/A runs declaring a winner: {result['aa_false_positive_rate']:.2%}")
    print(f"A/B (+5% likes) detected by day {DAYS}: {result['ab_power']:.2%}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
