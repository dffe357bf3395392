"""The product's real processes on loopback, for end-to-end tests and benchmarks: PostgreSQL with
a planted history, the `lightfm` model service (a model trained on that history), the `relay`
to a Kafka-protocol broker, and the `web` process (gunicorn with gevent workers).

Every process runs from this repository's code on a free port chosen here and is stopped by
`close()`; `restart_web()` kills the web process outright (SIGKILL) and starts it again. For fault
injection, `signal(name, sig)` signals a process, `kill(name)` crashes it, `restart(name)` starts
it again as it was started, and `start_relay(name)` runs one more relay.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from sqlalchemy import create_engine, text

from adapters.interaction_columns import TrainingInteractions
from adapters.lightfm.trainer import LightFMTrainer
from adapters.model_store.local import LocalModelStore
from adapters.sql.bulk import bulk_insert_interactions
from adapters.sql.migrations import upgrade_database
from app.composition.common import token_codec
from app.demo_data import SyntheticEvent, SyntheticInteractions, as_stored, generate_interactions
from app.settings import Settings
from domain.auth import SERVICE_SCOPE
from tests.servers import free_port, wait_for_port, wait_for_port_closed

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SECRET = "e2e-stack-secret-" + "x" * 32
#: Environment variables of the product that the stack sets itself (inherited ones are dropped).
_PRODUCT_PREFIXES = (
    "DATABASE_",
    "JWT_",
    "KAFKA_",
    "LIGHTFM_",
    "RATE_LIMIT_",
    "WEB_",
    "FEED_",
    "TRENDING_",
    "MODEL_STORE_",
    "SEGMENT_",
    "DD_",
)


@dataclass(frozen=True)
class StackPlan:
    """The planted history and the web's settings (environment variable -> value)."""

    users: int = 300
    videos: int = 800
    interactions: int = 30_000
    days: int = 5
    seed: int = 3
    web_workers: int = 2
    web_env: Mapping[str, str] = field(default_factory=dict)
    #: viewers whose whole history is kept out of the database and the model (new viewers)
    held_out_users: int = 0
    #: the last days of the history kept out of the database and the model (to replay)
    replay_days: int = 0


class Stack:
    def __init__(
        self, workdir: Path, database_url: str, kafka_bootstrap: str, topic: str, plan: StackPlan
    ) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.kafka_bootstrap = kafka_bootstrap
        self.topic = topic
        self.plan = plan
        self.model_end = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        self.history: SyntheticInteractions = generate_interactions(
            plan.users,
            plan.videos,
            plan.interactions,
            days=plan.days,
            seed=plan.seed,
            end=self.model_end,
        )
        #: the model's window ends here: later events are not seeded (`replay_events`)
        self.cut = self.model_end - timedelta(days=plan.replay_days)
        self.held_out = self._pick_held_out(plan.held_out_users)
        self.replay_events: list[SyntheticEvent] = []
        self.held_out_events: list[SyntheticEvent] = []
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, TextIO] = {}
        self._argv: dict[str, list[str]] = {}
        self.web_port = free_port()
        self.model_port = free_port()
        self._codec = token_codec(Settings(jwt_secret=SECRET, data_dir=workdir))
        self.known_users: list[str] = []
        self._clusters: dict[str, int] = {}

    # --- start and stop -------------------------------------------------------------------

    def start(self) -> None:
        upgrade_database(self.database_url)
        self._seed()
        self._train()
        self._spawn("lightfm", [str(BIN / "feedrec"), "lightfm"])
        wait_for_port("127.0.0.1", self.model_port, timeout=60, what="lightfm")
        self._spawn("relay", [str(BIN / "feedrec"), "relay"])
        self.start_web()

    def start_web(self) -> None:
        argv = [str(BIN / "gunicorn"), "-c", "python:app.gunicorn_conf", "--no-control-socket"]
        self._spawn("web", [*argv, "app.web:create_app()"])
        wait_for_port("127.0.0.1", self.web_port, timeout=60, what="gunicorn")
        deadline = time.monotonic() + 60
        while self.request("GET", "/healthz", "")[0] != 200:  # a worker answers
            if time.monotonic() > deadline:
                raise TimeoutError(f"the web process never answered: {self.log_tail('web')}")
            time.sleep(0.1)

    def restart_web(self) -> None:
        """Kill the web process group outright (no graceful stop) and start it again."""
        process = self._processes.pop("web")
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        self._logs.pop("web").close()
        # The workers die with the master, but a dying one may still hold the socket.
        wait_for_port_closed("127.0.0.1", self.web_port, timeout=10)
        self.start_web()

    def start_relay(self, name: str) -> None:
        """One more relay process (a standby while another holds the lease)."""
        self._spawn(name, [str(BIN / "feedrec"), "relay"])

    def signal(self, name: str, sig: int) -> None:
        os.killpg(self._processes[name].pid, sig)

    def kill(self, name: str) -> None:
        """Crash a process (SIGKILL to its group, no graceful stop)."""
        process = self._processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        self._logs.pop(name).close()

    def restart(self, name: str) -> None:
        """Start a killed process again with the command line it was started with."""
        self._spawn(name, self._argv[name])
        if name == "lightfm":
            wait_for_port("127.0.0.1", self.model_port, timeout=60, what="lightfm")

    def close(self) -> None:
        for name, process in reversed(list(self._processes.items())):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)
            self._logs.pop(name).close()
        self._processes.clear()

    def log_tail(self, name: str, limit: int = 3000) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")[-limit:]

    # --- talking to it --------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def token(self, user: str) -> str:
        return self._codec.issue(user)

    def service_token(self) -> str:
        return self._codec.issue("ingest", scopes=(SERVICE_SCOPE,))

    def get_feed(self, user: str, limit: int = 20, **query: str) -> dict[str, Any]:
        params = "&".join(f"{k}={v}" for k, v in {"userId": user, "limit": limit, **query}.items())
        status, body = self.request("GET", f"/feed/recommendations?{params}", self.token(user))
        if status != 200:
            raise AssertionError(f"GET feed for {user}: {status} {body}")
        return body

    def post_interaction(self, user: str, video: str, kind: str = "like", **extra: Any) -> str:
        event = {
            "userId": user,
            "videoId": video,
            "interactionType": kind,
            "watchTime": 20_000,
            "timestamp": datetime.now(UTC).isoformat(),
            **extra,
        }
        status, body = self.request("POST", "/feed/interactions", self.token(user), event)
        if status != 202:
            raise AssertionError(f"POST interaction for {user}: {status} {body}")
        return str(body["eventIds"][0])

    def request(
        self, method: str, path: str, token: str, body: object | None = None
    ) -> tuple[int, dict[str, Any]]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")
        except (urllib.error.URLError, ConnectionError):
            return 0, {}

    def query(self, sql: str, **params: object) -> list[tuple[Any, ...]]:
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                return [tuple(row) for row in connection.execute(text(sql), params)]
        finally:
            engine.dispose()

    def forget_session(self, feed_session_id: str) -> None:
        """Delete a session and its pages, as if it had never been served."""
        engine = create_engine(self.database_url)
        try:
            with engine.begin() as connection:
                for table in ("feed_cache", "feed_sessions"):
                    connection.execute(
                        text(f"DELETE FROM {table} WHERE feed_session_id = :s"),
                        {"s": feed_session_id},
                    )
        finally:
            engine.dispose()

    def forget_all_sessions(self) -> None:
        """Delete every session and page served so far."""
        engine = create_engine(self.database_url)
        try:
            with engine.begin() as connection:
                connection.execute(text("DELETE FROM feed_cache"))
                connection.execute(text("DELETE FROM feed_sessions"))
        finally:
            engine.dispose()

    def video_cluster(self, video_id: str) -> int | None:
        """The planted taste cluster of a video of the history (None for another video)."""
        if not self._clusters:
            ids = self.history.video_ids.tolist()
            self._clusters = dict(zip(ids, self.history.video_clusters.tolist(), strict=True))
        return self._clusters.get(video_id)

    # --- internals ------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_PRODUCT_PREFIXES)}
        env.update(
            PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
            FEEDREC_DATA_DIR=str(self.workdir),
            DATABASE_URL=self.database_url,
            JWT_SECRET=SECRET,
            KAFKA_BOOTSTRAP_SERVERS=self.kafka_bootstrap,
            KAFKA_TOPIC=self.topic,
            LIGHTFM_BIND=f"127.0.0.1:{self.model_port}",
            LIGHTFM_TARGET=f"127.0.0.1:{self.model_port}",
            MODEL_STORE_URI=str(self.workdir / "models"),
            WEB_BIND=f"127.0.0.1:{self.web_port}",
            WEB_WORKERS=str(self.plan.web_workers),
            RATE_LIMIT_FEED="",
            RATE_LIMIT_INTERACTIONS="",
            RELAY_POLL_INTERVAL_MS="20",
        )
        env.update(self.plan.web_env)
        return env

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.workdir / f"{name}.log").open("a")
        self._logs[name] = log
        self._argv[name] = argv
        self._processes[name] = subprocess.Popen(
            argv,
            cwd=REPO,
            env=self._env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _pick_held_out(self, count: int) -> frozenset[str]:
        """The first `count` viewers with at least 8 events: enough to post some and score the
        rest."""
        if count <= 0:
            return frozenset()
        events = np.bincount(self.history.user_codes, minlength=len(self.history.user_ids))
        eligible = np.flatnonzero(events >= 8)[:count]
        return frozenset(self.history.user_ids[eligible].tolist())

    def _seeded(self) -> Iterator[SyntheticEvent]:
        """The events the database and the model start with; the rest are set aside."""
        for event in self.history.events():
            if event.user_id in self.held_out:
                self.held_out_events.append(event)
            elif event.occurred_at >= self.cut:
                self.replay_events.append(event)
            else:
                yield event

    def _seed(self) -> None:
        engine = create_engine(self.database_url)
        try:
            bulk_insert_interactions(engine, as_stored(self._seeded(), "seed"))
        finally:
            engine.dispose()

    def _train(self) -> None:
        history = self.history
        held_out_codes = [i for i, u in enumerate(history.user_ids.tolist()) if u in self.held_out]
        keep = (history.occurred_at_ms < int(self.cut.timestamp() * 1000)) & ~np.isin(
            history.user_codes, held_out_codes
        )
        training = TrainingInteractions(
            history.user_ids,
            history.user_codes[keep],
            history.video_ids,
            history.video_codes[keep],
            history.type_codes[keep],
            history.watch_time_ms[keep],
            history.occurred_at_ms[keep],
        )
        start = self.model_end - timedelta(days=self.plan.days)
        artifact = LightFMTrainer(no_components=16, epochs=10, num_threads=1).train(
            training, start, self.cut, self.cut
        )
        store = LocalModelStore(self.workdir / "models")
        store.put(artifact.info.version, artifact.to_bytes(), artifact.info)
        store.publish(artifact.info.version)
        self.known_users = list(artifact.user_ids)
