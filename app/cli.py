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
feedrec experiment report   the feed experiment's readout (docs/experiments.md)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from app.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEMO_VIEWER = "u000001"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="feedrec", description="feedrec: the feed recommendation service"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start the whole product on embedded defaults")
    commands.add_parser("migrate", help="upgrade the database schema")
    seed = commands.add_parser(
        "seed", help="load the synthetic demo dataset if the database is empty"
    )
    seed.add_argument("--force", action="store_true", help="seed even if interactions exist")
    commands.add_parser("train-demo", help="train and publish a model if none is published")
    token = commands.add_parser("token", help="print a bearer token")
    token.add_argument("--user", default=DEMO_VIEWER, help="the token's subject (userId)")
    token.add_argument("--service", action="store_true", help="may act for any user")
    token.add_argument("--ttl", type=int, default=86_400, help="lifetime in seconds")
    commands.add_parser("lightfm", help="run the LightFM gRPC model service")
    commands.add_parser("relay", help="publish outbox messages to Kafka (the relay process)")
    commands.add_parser("worker", help="run the nightly retrain daily (the worker process)")
    retrain = commands.add_parser("retrain", help="run the nightly retrain")
    retrain.add_argument("--now", action="store_true", required=True, help="run it at once")
    from app.composition.experiments import add_report_command

    add_report_command(commands)
    args = parser.parse_args(argv)
    settings = Settings.from_env()

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
    elif args.command == "token":
        print(mint_token(settings, args.user, args.service, args.ttl))
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
        from app.worker_main import exit_code, print_run, retrain_now

        record = retrain_now(settings)
        print_run(record)
        return exit_code(record)
    elif args.command == "experiment":
        from app.composition.experiments import run_report_command

        return run_report_command(settings, args)
    return 0


def migrate(settings: Settings) -> None:
    from adapters.sql.migrations import upgrade_database

    upgrade_database(settings.resolved_database_url)


def mint_token(settings: Settings, user: str, service: bool, ttl_s: int) -> str:
    from app.composition.common import token_codec
    from domain.auth import SERVICE_SCOPE

    return token_codec(settings).issue(user, [SERVICE_SCOPE] if service else [], ttl_s)


def up(settings: Settings) -> int:
    """Prepare the embedded defaults, then hand over to honcho with the Procfile."""
    from app.demo import ensure_demo_model, seed_demo
    from app.secrets import jwt_secret

    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    jwt_secret(settings, create=True)
    migrate(settings)
    seed_demo(settings, force=False)
    ensure_demo_model(settings)
    token = mint_token(settings, DEMO_VIEWER, service=False, ttl_s=7 * 86_400)
    host = settings.web_bind
    print(
        f"\nfeedrec is starting: http://{host}/healthz  http://{host}/openapi.json\n"
        f"A token for viewer {DEMO_VIEWER} (7 days):\n  {token}\n"
        f"Try:\n  curl -H 'Authorization: Bearer {token}' "
        f"'http://{host}/feed/recommendations?userId={DEMO_VIEWER}&limit=10'\n",
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
