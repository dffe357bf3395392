"""`feedrec`: the command line of the service.

feedrec up         everything, embedded: migrate, seed the demo, train, start the Procfile
feedrec migrate    bring the database schema to the latest version
feedrec seed       load the synthetic demo catalogue and history (once)
feedrec train-demo train a model on the demo history and publish it (once)
feedrec token      mint a bearer token for local use
feedrec lightfm    run the LightFM model service (the `lightfm` process)
feedrec relay      publish the outbox to Kafka (the `relay` process)
feedrec worker     the nightly retrain at RETRAIN_AT UTC (the `worker` process)
feedrec retrain --now   run the nightly retrain at once, with progress bars
feedrec status     the service at a glance, for an operator or cron (exit 1: something is down)
feedrec experiment report   the feed experiment's readout (docs/experiments.md)
feedrec evaluate   offline: the product's LightFM configuration against baselines, two splits
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from app.settings import Settings, SettingsError
from domain.errors import DomainError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEMO_VIEWER = "u000001"


#: The lifetime `feedrec token` and the banner of `feedrec up` give a viewer token, seconds.
DEFAULT_TOKEN_TTL_S = 7 * 86_400


class CommandError(Exception):
    """A command cannot go on; the message is one line saying what to do."""


class _DefaultsShown(argparse.ArgumentDefaultsHelpFormatter):
    """Says an option's default, except for flags and options whose help explains it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, argparse.SUPPRESS):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    defaults = _DefaultsShown
    parser = argparse.ArgumentParser(
        prog="feedrec", description="feedrec: the feed recommendation service"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, help=summary, description=summary, formatter_class=defaults
        )

    command("up", "start the whole product on embedded defaults (migrate, seed, train, run)")
    command("migrate", "upgrade the database schema to the latest version")
    seed = command("seed", "load the synthetic demo dataset if the database has no interactions")
    seed.add_argument("--force", action="store_true", help="seed even if interactions exist")
    command("train-demo", "train and publish a model on the stored history if none is published")
    token = command(
        "token",
        "print a bearer token signed with JWT_SECRET (or the embedded run's var/jwt-secret)",
    )
    token.add_argument(
        "--user", required=True, help="the token's subject: the viewer's userId (e.g. u000001)"
    )
    token.add_argument(
        "--service",
        action="store_true",
        help="add the feed:service scope: the token may act for any viewer",
    )
    token.add_argument(
        "--ttl",
        type=int,
        default=None,
        metavar="SECONDS",
        help=f"lifetime in seconds, 1 to JWT_MAX_LIFETIME_S for a viewer token "
        f"(default: {DEFAULT_TOKEN_TTL_S}, 7 days, or JWT_MAX_LIFETIME_S if shorter)",
    )
    command("lightfm", "run the LightFM gRPC model service (the Procfile's lightfm process)")
    command("relay", "publish outbox messages to Kafka (the Procfile's relay process)")
    command("worker", "run the nightly retrain daily at RETRAIN_AT UTC (the worker process)")
    retrain = command("retrain", "run the nightly retrain at once and print its run record")
    retrain.add_argument("--now", action="store_true", required=True, help="run it at once")
    status = command(
        "status",
        "the service at a glance: model, breaker, fallbacks, outbox, retrains, dependencies; "
        "exit status 1 when a critical part is down",
    )
    status.add_argument(
        "--minutes", type=int, default=15, help="how far back fallback rates are computed"
    )
    status.add_argument("--json", action="store_true", help="one JSON object instead of text")
    experiment = command("experiment", "read the feed experiment's results (docs/experiments.md)")
    actions = experiment.add_subparsers(dest="action", required=True)
    report = actions.add_parser(
        "report",
        help="per variant: metrics, lifts, ratio test",
        description="per variant: metrics with 95% intervals, the lift against the control with"
        " an always-valid interval, the sample-ratio test; exit 1 when the ratio test flags",
        formatter_class=defaults,
    )
    report.add_argument("--days", type=int, default=14, help="days up to --end")
    report.add_argument("--end", type=date.fromisoformat, help="last UTC day (default today)")
    report.add_argument(
        "--source",
        choices=("export", "database"),
        default="export",
        help="the parquet exports or the service's database",
    )
    report.add_argument("--json", action="store_true", help="print JSON")
    report.add_argument("--chart", type=Path, help="write the lift chart (PNG) here")
    evaluate = command(
        "evaluate",
        "offline evaluation: per-viewer and global time splits, the product's configuration "
        "against popularity, trending and LightFM defaults (protocol: docs/relevance.md)",
    )
    source = evaluate.add_mutually_exclusive_group()
    source.add_argument(
        "--export", metavar="URI", help="parquet in the export's layout (default: EXPORT_URI)"
    )
    source.add_argument(
        "--dataset",
        choices=("planted", "movielens-100k"),
        help="a data set built on the spot: the demo generator's, or MovieLens 100k from the "
        "recbole wheel",
    )
    evaluate.add_argument("--runs", type=int, default=3, help="runs per split (seeds differ)")
    evaluate.add_argument(
        "--search-budget",
        type=float,
        metavar="S",
        help="search budget per run (default: RETRAIN_SEARCH_BUDGET_S, the nightly job's)",
    )
    evaluate.add_argument("--chart", default="evaluation.png", help="where the PNG chart goes")
    evaluate.add_argument("--json", action="store_true", help="also print one JSON summary line")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        return run_command(args, settings)
    except (CommandError, SettingsError) as err:
        print(f"feedrec {args.command}: error: {err}", file=sys.stderr)
        return 2
    except DomainError as err:
        # A dependency that is down, data that cannot be used: the message names it.
        print(f"feedrec {args.command}: error: {err.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "token":
        print(mint_token(settings, args.user, args.service, token_ttl(settings, args)))
        return 0
    if args.command == "status":
        from app.status import gather, render

        report = gather(settings, window_minutes=args.minutes)
        print(render(report, as_json=args.json))
        return report.exit_code

    if args.command == "evaluate":
        return run_evaluation(settings, args)

    from app.logs import configure_logging

    configure_logging(settings.log_level)
    if args.command == "up":
        return up(settings)
    if args.command == "migrate":
        migrate(settings)
    elif args.command == "seed":
        from app.demo import seed_demo

        seed_demo(settings, force=args.force)
    elif args.command == "train-demo":
        from app.demo import ensure_demo_model

        ensure_demo_model(settings)
    elif args.command == "lightfm":
        from app.lightfm_main import serve

        serve(settings)
    elif args.command == "relay":
        from app.relay_main import run

        run(settings)
    elif args.command == "worker":
        from app.worker_main import serve as serve_worker

        serve_worker(settings)
    elif args.command == "retrain":
        from app.retrain_scope import describe_left_out
        from app.worker_main import exit_code, print_run, retrain_now

        record = retrain_now(settings)
        print_run(record)
        print(describe_left_out(settings, record), file=sys.stderr)
        return exit_code(record)
    elif args.command == "experiment":
        from app.composition.experiments import run_report_command

        return run_report_command(settings, args)
    return 0


def run_evaluation(settings: Settings, args: argparse.Namespace) -> int:
    import json
    import tempfile

    from app import evaluate as offline

    if args.search_budget is None:
        args.search_budget = settings.retrain_search_budget_s
    if args.runs < 1 or args.search_budget < 0:
        raise CommandError("--runs must be at least 1 and --search-budget not negative")
    with tempfile.TemporaryDirectory() as folder:
        if args.dataset:
            try:
                uri, name = str(offline.build_dataset(args.dataset, Path(folder))), args.dataset
            except offline.DatasetUnavailable as err:
                raise CommandError(str(err)) from err
        else:
            uri = args.export or settings.resolved_export_uri
            name = uri
        rows = offline.read_export(uri, settings.s3_endpoint_url or None)
    if len(rows) == 0:
        raise CommandError(f"no interactions under {uri}: export first, or pass --dataset")
    trainer = offline.default_trainer(
        settings.train_components,
        settings.train_epochs,
        settings.train_seeds,
        serve_components=settings.serve_components,
    )
    results = offline.evaluate_rows(
        name,
        rows,
        trainer,
        runs=args.runs,
        search_budget_s=args.search_budget,
        fit_budget_s=settings.retrain_fit_budget_s or None,
        progress=lambda line: print(f"... {line}", file=sys.stderr, flush=True),
    )
    print(offline.table(results))
    offline.draw(results, Path(args.chart))
    print(f"chart: {args.chart}", file=sys.stderr)
    if args.json:
        print(json.dumps(offline.summary(results)))
    return 0


def token_ttl(settings: Settings, args: argparse.Namespace) -> int:
    """The lifetime asked for, checked: a token that is born expired, or that the service
    would refuse as too long-lived, is an error here, not a 401 later."""
    longest = None if args.service else settings.jwt_max_lifetime_s
    if args.ttl is None:
        return DEFAULT_TOKEN_TTL_S if longest is None else min(DEFAULT_TOKEN_TTL_S, longest)
    if args.ttl < 1:
        raise CommandError(f"--ttl must be at least 1 second, not {args.ttl}")
    if longest is not None and args.ttl > longest:
        raise CommandError(
            f"--ttl {args.ttl} is longer than JWT_MAX_LIFETIME_S ({longest} s), so the service "
            "would refuse the token; ask for less, or raise JWT_MAX_LIFETIME_S"
        )
    chosen: int = args.ttl
    return chosen


def migrate(settings: Settings) -> None:
    from adapters.sql.migrations import upgrade_database

    upgrade_database(settings.resolved_database_url)


def mint_token(settings: Settings, user: str, service: bool, ttl_s: int) -> str:
    # Only PyJWT: the composition's codec would import datadog and pyarrow (0.2 s) for nothing.
    from adapters.jwt_tokens import JwtTokens
    from app.secrets import jwt_secret
    from domain.auth import SERVICE_SCOPE
    from domain.interactions import id_problem

    problem = id_problem(user)
    if problem:
        raise CommandError(f"--user {user!r}: {problem}")
    codec = JwtTokens(
        secret=jwt_secret(settings),
        audience=settings.jwt_audience,
        max_lifetime_s=settings.jwt_max_lifetime_s,
        issuer=settings.jwt_issuer,
    )
    return codec.issue(user, [SERVICE_SCOPE] if service else [], ttl_s)


@contextmanager
def stage(title: str) -> Iterator[None]:
    """One line per start-up stage with its elapsed time, so a first run is never silent."""
    print(f"==> {title} ...", flush=True)
    started = time.monotonic()
    yield
    print(f"    done in {time.monotonic() - started:.1f} s", flush=True)


def up(settings: Settings) -> int:
    """Prepare the embedded defaults, then hand over to honcho with the Procfile."""
    from app.demo import ensure_demo_model, seed_demo
    from app.ports_check import taken_ports
    from app.secrets import jwt_secret

    if taken := taken_ports(settings):
        for port in taken:
            print(f"feedrec up: {port.describe()}", file=sys.stderr)
        return 2
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    jwt_secret(settings, create=True)
    with stage("migrating the database"):
        migrate(settings)
    with stage("seeding the demo history (first run: about 10 s)"):
        seed_demo(settings, force=False)
    with stage("training the demo model (first run: about 10 s)"):
        ensure_demo_model(settings)
    token = mint_token(settings, DEMO_VIEWER, service=False, ttl_s=DEFAULT_TOKEN_TTL_S)
    host = settings.web_bind
    print(
        f"\nfeedrec is starting: http://{host}/healthz  http://{host}/openapi.json\n"
        f"A token for viewer {DEMO_VIEWER} ({DEFAULT_TOKEN_TTL_S // 86_400} days):\n  {token}\n"
        f"Try:\n  curl -H 'Authorization: Bearer {token}' "
        f"'http://{host}/feed/recommendations?userId={DEMO_VIEWER}&limit=10'\n"
        "Stop everything with Ctrl-C.\n",
        flush=True,
    )
    env = dict(os.environ)
    env["FEEDREC_DATA_DIR"] = str(data_dir)
    procfile = PROJECT_ROOT / "Procfile"
    if not settings.kafka_bootstrap_servers:
        # No broker of the operator's own: run the embedded one beside the Procfile's processes.
        from app.embedded_broker import broker_process_line

        procfile = data_dir / "Procfile.embedded"
        procfile.write_text(
            (PROJECT_ROOT / "Procfile").read_text().rstrip("\n")
            + "\n"
            + broker_process_line(settings.embedded_kafka_bind)
            + "\n"
        )
        env["KAFKA_BOOTSTRAP_SERVERS"] = settings.embedded_kafka_bind
    # The Procfile names console scripts of this virtualenv.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PYTHONUNBUFFERED", "1")
    command = [
        sys.executable,
        "-m",
        "honcho",
        "start",
        "-f",
        str(procfile),
        "-d",
        str(PROJECT_ROOT),
    ]
    os.execvpe(command[0], command, env)  # noqa: S606 - replaces this process on purpose


if __name__ == "__main__":
    sys.exit(main())
