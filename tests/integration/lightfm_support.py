"""Shared set-up of the LightFM model service tests: two small trained models, a store holding
them, and real gRPC servers on free ports that are always stopped."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from adapters.lightfm.artifact import ModelArtifact
from adapters.lightfm.model_service import ModelService
from adapters.lightfm.server import build_server
from adapters.lightfm.trainer import LightFMTrainer
from adapters.model_store.local import LocalModelStore
from adapters.system_clock import SystemClock
from app.demo_data import generate_interactions
from domain.model import ModelInfo
from proto.lightfm.v2025_9 import recommender_pb2_grpc as pb_grpc

WINDOW_END = datetime(2026, 11, 24, tzinfo=UTC)
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass(frozen=True)
class TwoModels:
    """Two versions trained on the same history (same users and videos, other seeds)."""

    first: ModelArtifact
    second: ModelArtifact


def train_two_models() -> TwoModels:
    """Small on purpose (150 users, 400 videos, 16 components): well under a second."""
    history = generate_interactions(150, 400, 6_000, days=7, seed=3, end=WINDOW_END).to_training()

    def train(seed: int) -> ModelArtifact:
        trainer = LightFMTrainer(no_components=16, epochs=5, num_threads=1, seed=seed)
        trained_at = WINDOW_END + timedelta(hours=seed)
        return trainer.train(history, WINDOW_END - timedelta(days=7), WINDOW_END, trained_at)

    return TwoModels(train(1), train(2))


def store_with(root: Path, models: TwoModels) -> LocalModelStore:
    """A store under `root` holding both versions, the first published."""
    store = LocalModelStore(root)
    for artifact in (models.first, models.second):
        store.put(artifact.info.version, artifact.to_bytes(), artifact.info)
    store.publish(models.first.info.version)
    return store


@dataclass
class RunningServer:
    models: ModelService
    stub: Any
    health: Any
    channel: grpc.Channel

    def health_of(self, service: str) -> int:
        status: int = self.health.Check(health_pb2.HealthCheckRequest(service=service)).status
        return status


class ServerStarter:
    """Starts real servers on 127.0.0.1 with a free port; `close` stops every one of them."""

    def __init__(self) -> None:
        self._started: list[tuple[grpc.Server, grpc.Channel, ModelService]] = []

    def __call__(
        self, store: LocalModelStore, *, load: bool = True, admin_token: str = ""
    ) -> RunningServer:
        service = ModelService(store, SystemClock())
        server, port = build_server(service, "127.0.0.1:0", max_workers=8, admin_token=admin_token)
        server.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self._started.append((server, channel, service))
        if load:
            service.load()
        return RunningServer(
            service, pb_grpc.RecommenderStub(channel), health_pb2_grpc.HealthStub(channel), channel
        )

    def close(self) -> None:
        for server, channel, service in self._started:
            service.stop_polling()
            channel.close()
            server.stop(grace=None).wait()


def status_of(call: Callable[[], object]) -> grpc.StatusCode:
    """The status code of a call that must fail."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    code: grpc.StatusCode = caught.value.code()
    return code


def clustered_artifact(
    n_items: int, n_users: int, *, components: int = 64, seen_per_user: int = 20, seed: int = 0
) -> ModelArtifact:
    """A synthetic model shaped like a trained one: viewers and videos drawn around 64 planted
    tastes (so the best videos of a viewer share its taste), biases of LightFM's scale, and
    `seen_per_user` seen videos per viewer. Users are `u000000`..., videos `v0000000`..."""
    rng = np.random.default_rng(seed)
    tastes = rng.standard_normal((64, components), dtype=np.float32)
    items = np.empty((n_items, components), dtype=np.float32)
    # A million rows at a time: whole-catalogue temporaries would triple a 10M catalogue's
    # 2.6 GB (up to a million, the draws are the same as in one piece).
    for start in range(0, n_items, 1_000_000):
        part = items[start : start + 1_000_000]
        part[:] = tastes[rng.integers(0, 64, len(part))] * 0.3
        part += rng.standard_normal(part.shape, dtype=np.float32) * 0.3
    users = tastes[rng.integers(0, 64, n_users)] * 0.5
    users += rng.standard_normal((n_users, components), dtype=np.float32) * 0.3
    seen = np.sort(rng.choice(n_items, size=(n_users, seen_per_user)), axis=1)
    info = ModelInfo(
        version=f"synthetic-{n_items}",
        trained_at=WINDOW_END,
        window_start=WINDOW_END - timedelta(days=30),
        window_end=WINDOW_END,
        n_users=n_users,
        n_items=n_items,
        n_interactions=n_users * seen_per_user,
        metrics=None,
        params={"no_components": str(components)},
    )
    return ModelArtifact(
        info=info,
        user_ids=[f"u{i:06d}" for i in range(n_users)],
        item_ids=[f"v{i:07d}" for i in range(n_items)],
        user_embeddings=users,
        user_biases=rng.standard_normal(n_users, dtype=np.float32) * 0.1,
        item_embeddings=items,
        item_biases=rng.standard_normal(n_items, dtype=np.float32) * 0.5,
        seen_indptr=np.arange(0, n_users * seen_per_user + 1, seen_per_user, dtype=np.int64),
        seen_indices=seen.reshape(-1).astype(np.int32),
    )
