"""Relevance benchmark: `feedrec evaluate` on every data set, both splits, 3 runs.

    python bench/relevance.py [--runs 3] [--search-budget S] [--fit-budget S]
                              [--datasets planted,movielens-100k] [--chart var/relevance.png]

The budgets default to the nightly job's (`RETRAIN_SEARCH_BUDGET_S`, `RETRAIN_FIT_BUDGET_S`),
so the product is what the night would pick on the same rows.

Data sets: `planted` (the demo generator's tastes: 1,000 viewers, 5,000 videos, 200,000 events
over 30 days) and `movielens-100k` (the copy in the recbole wheel; `make test` installs it).
Each is written in the export's parquet layout and read back through the export reader, then
evaluated as `feedrec evaluate` does (`app.evaluate`; the protocol is in docs/relevance.md).
Target: the product's configuration beats every baseline by >= 5% relative precision@10 and
NDCG@10 on both splits of every data set. The default configuration (the nightly budgets) took
45 minutes on 2 cores shared with other work (load average 6-10). Human-readable tables, then
one JSON line: per data set and split each method's
precision@10 and NDCG@10 (mean and std over runs) and `min_gain_vs_best_baseline`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from app import evaluate as offline
from app.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--search-budget", type=float)
    parser.add_argument("--fit-budget", type=float)
    parser.add_argument("--datasets", default=",".join(offline.DATASETS))
    parser.add_argument("--chart", default="var/relevance.png")
    parser.add_argument("--max-users", type=int, default=10_000)
    args = parser.parse_args(argv)
    settings = Settings()
    search_budget = settings.retrain_search_budget_s
    search_budget = search_budget if args.search_budget is None else args.search_budget
    fit_budget = settings.retrain_fit_budget_s if args.fit_budget is None else args.fit_budget
    trainer = offline.default_trainer(
        settings.train_components,
        settings.train_epochs,
        settings.train_seeds,
        serve_components=settings.serve_components,
    )
    results: list[offline.SplitResult] = []
    started = time.monotonic()
    for name in args.datasets.split(","):
        with tempfile.TemporaryDirectory() as folder:
            rows = offline.read_export(str(offline.build_dataset(name, Path(folder))))
        print(f"{name}: {len(rows)} events", flush=True)
        results += offline.evaluate_rows(
            name,
            rows,
            trainer,
            runs=args.runs,
            search_budget_s=search_budget,
            fit_budget_s=fit_budget or None,
            max_users=args.max_users,
            progress=lambda line: print(
                f"... {line} ({time.monotonic() - started:.0f} s)", flush=True
            ),
        )
    print(offline.table(results))
    Path(args.chart).parent.mkdir(parents=True, exist_ok=True)
    offline.draw(results, Path(args.chart))
    print(f"chart: {args.chart}; {time.monotonic() - started:.0f} s in all")
    print(json.dumps(offline.summary(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
