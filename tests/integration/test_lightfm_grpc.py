"""The LightFM model service over a real gRPC port: ranking, the status codes the web
service's fallback depends on, health, reflection and the model description."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from adapters.lightfm.server import SERVICE_NAME
from adapters.model_store.local import LocalModelStore
from proto.lightfm.v2025_9 import recommender_pb2 as pb
from tests.integration.lightfm_support import (
    NOT_SERVING,
    SERVING,
    ServerStarter,
    TwoModels,
    status_of,
    store_with,
    train_two_models,
)

pytestmark = pytest.mark.integration
_NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def _positive(video_id: str, moment: datetime, weight: float = 3.0) -> Any:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return pb.RecentPositive(video_id=video_id, weight=weight, occurred_at=stamp)


@pytest.fixture(scope="module")
def models() -> TwoModels:
    return train_two_models()


@pytest.fixture
def store(tmp_path: Path, models: TwoModels) -> LocalModelStore:
    return store_with(tmp_path / "models", models)


@pytest.fixture
def start_server() -> Iterator[ServerStarter]:
    starter = ServerStarter()
    yield starter
    starter.close()


def test_recommend_ranks_best_first_and_leaves_out_seen_and_excluded_videos(
    store: LocalModelStore, models: TwoModels, start_server: ServerStarter
) -> None:
    running = start_server(store)
    artifact = models.first
    user_index = max(range(len(artifact.user_ids)), key=lambda u: len(artifact.seen_by(u)))
    user = artifact.user_ids[user_index]
    seen = {artifact.item_ids[i] for i in artifact.seen_by(user_index)}
    top = running.stub.Recommend(pb.RecommendRequest(user_id=user, limit=5), timeout=5)
    excluded = [item.video_id for item in top.items[:3]] + ["v-not-in-the-catalogue"]

    reply = running.stub.Recommend(
        pb.RecommendRequest(user_id=user, limit=25, exclude_video_ids=excluded, request_id="r-1"),
        timeout=5,
    )

    ids = [item.video_id for item in reply.items]
    scores = [item.score for item in reply.items]
    assert len(ids) == 25 == len(set(ids))
    assert scores == sorted(scores, reverse=True)
    assert not set(ids) & (seen | set(excluded))
    assert reply.model_version == artifact.info.version
    assert reply.request_id == "r-1"
    assert ids[:2] == [item.video_id for item in top.items[3:5]]


def test_an_unknown_user_is_not_found(store: LocalModelStore, start_server: ServerStarter) -> None:
    running = start_server(store)
    request = pb.RecommendRequest(user_id="u-never-seen", limit=10)
    code = status_of(lambda: running.stub.Recommend(request, timeout=5))
    assert code == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("request_fields", "named"),
    [
        ({"user_id": "", "limit": 10}, "user_id"),
        ({"user_id": "u" * 129, "limit": 10}, "user_id"),
        ({"user_id": "u000001", "limit": 0}, "limit"),
        ({"user_id": "u000001", "limit": 501}, "limit"),
        ({"user_id": "u000001", "limit": 10, "exclude_video_ids": ["v"] * 10_001}, "exclude"),
        ({"user_id": "u000001", "limit": 10, "request_id": "r\n"}, "request_id"),
    ],
)
def test_bad_requests_are_invalid_argument_naming_the_field(
    store: LocalModelStore, start_server: ServerStarter, request_fields: dict[str, Any], named: str
) -> None:
    running = start_server(store)
    with pytest.raises(grpc.RpcError) as caught:
        running.stub.Recommend(pb.RecommendRequest(**request_fields), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert named in caught.value.details()


def test_without_a_model_calls_are_unavailable_and_health_is_not_serving(
    tmp_path: Path, start_server: ServerStarter
) -> None:
    running = start_server(LocalModelStore(tmp_path / "empty"), load=False)
    request = pb.RecommendRequest(user_id="u000001", limit=10)

    assert status_of(lambda: running.stub.Recommend(request, timeout=5)) == (
        grpc.StatusCode.UNAVAILABLE
    )
    assert status_of(lambda: running.stub.DescribeModel(pb.DescribeModelRequest(), timeout=5)) == (
        grpc.StatusCode.UNAVAILABLE
    )
    assert running.health_of("") == NOT_SERVING
    assert running.health_of(SERVICE_NAME) == NOT_SERVING
    # Nothing published: asking for "the published one" names nothing that exists.
    load = pb.LoadModelRequest(version="")
    assert status_of(lambda: running.stub.LoadModel(load, timeout=5)) == grpc.StatusCode.NOT_FOUND


def test_health_turns_serving_when_load_model_brings_a_model_in(
    store: LocalModelStore, models: TwoModels, start_server: ServerStarter
) -> None:
    running = start_server(store, load=False)
    assert running.health_of(SERVICE_NAME) == NOT_SERVING

    described = running.stub.LoadModel(pb.LoadModelRequest(version=""), timeout=10)

    assert described.version == models.first.info.version
    assert running.health_of("") == SERVING
    assert running.health_of(SERVICE_NAME) == SERVING


def test_reflection_lists_and_describes_the_recommender(
    store: LocalModelStore, start_server: ServerStarter
) -> None:
    running = start_server(store)
    reflection = reflection_pb2_grpc.ServerReflectionStub(running.channel)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE_NAME),
    ]

    listed, described = list(reflection.ServerReflectionInfo(iter(requests), timeout=5))

    names = {service.name for service in listed.list_services_response.service}
    assert {"lightfm.v2025_9.Recommender", "grpc.health.v1.Health"} <= names
    assert described.file_descriptor_response.file_descriptor_proto


def test_describe_model_reports_the_loaded_model(
    store: LocalModelStore, models: TwoModels, start_server: ServerStarter
) -> None:
    before = datetime.now(UTC)
    running = start_server(store)
    info = models.first.info

    described = running.stub.DescribeModel(pb.DescribeModelRequest(), timeout=5)

    assert described.version == info.version
    assert described.trained_at.ToDatetime(tzinfo=UTC) == info.trained_at
    assert described.window_start.ToDatetime(tzinfo=UTC) == info.window_start
    assert described.window_end.ToDatetime(tzinfo=UTC) == info.window_end
    assert (described.n_users, described.n_items, described.n_interactions) == (
        info.n_users,
        info.n_items,
        info.n_interactions,
    )
    assert dict(described.params) == dict(info.params)
    assert described.HasField("metrics") == (info.metrics is not None)
    assert described.loaded_at.ToDatetime(tzinfo=UTC) >= before - timedelta(seconds=1)


def test_fresh_positives_move_the_ranking_in_real_time_and_older_ones_do_not(
    store: LocalModelStore, models: TwoModels, start_server: ServerStarter
) -> None:
    running = start_server(store)
    artifact = models.first
    user = artifact.user_ids[0]
    window_end = artifact.info.window_end
    plain = running.stub.Recommend(pb.RecommendRequest(user_id=user, limit=20), timeout=5)
    # Videos far down the user's own ranking: liking them must pull their like in.
    tail = running.stub.Recommend(pb.RecommendRequest(user_id=user, limit=400), timeout=5)
    liked = [item.video_id for item in tail.items[-5:]]

    def ask(moment: datetime) -> Any:
        recent = [_positive(video, moment) for video in liked]
        request = pb.RecommendRequest(user_id=user, limit=20, recent_positives=recent)
        return running.stub.Recommend(request, timeout=5)

    fresh = ask(window_end + timedelta(minutes=5))
    old = ask(window_end - timedelta(minutes=5))

    assert plain.personalization == pb.PERSONALIZATION_MODEL
    assert fresh.personalization == pb.PERSONALIZATION_REALTIME
    assert old.personalization == pb.PERSONALIZATION_MODEL
    assert [i.video_id for i in old.items] == [i.video_id for i in plain.items]
    fresh_ids = [i.video_id for i in fresh.items]
    assert fresh_ids != [i.video_id for i in plain.items] and not set(fresh_ids) & set(liked)
    assert [i.score for i in fresh.items] == sorted((i.score for i in fresh.items), reverse=True)


def test_an_unknown_user_with_a_recent_like_gets_a_realtime_ranking(
    store: LocalModelStore, models: TwoModels, start_server: ServerStarter
) -> None:
    running = start_server(store)
    liked = models.first.item_ids[7]
    # For a user the model does not know, every recent positive counts, however old.
    recent = [_positive(liked, datetime(2020, 1, 1, tzinfo=UTC)), _positive("v-unknown", _NOW)]
    request = pb.RecommendRequest(user_id="u-never-seen", limit=10, recent_positives=recent)

    reply = running.stub.Recommend(request, timeout=5)

    assert reply.personalization == pb.PERSONALIZATION_REALTIME
    assert len(reply.items) == 10 and liked not in {i.video_id for i in reply.items}
    only_unknown = pb.RecommendRequest(
        user_id="u-never-seen", limit=10, recent_positives=[_positive("v-unknown", _NOW)]
    )
    assert status_of(lambda: running.stub.Recommend(only_unknown, timeout=5)) == (
        grpc.StatusCode.NOT_FOUND
    )


@pytest.mark.parametrize(
    ("recent", "named"),
    [
        ([_positive("v000001", _NOW)] * 501, "recent_positives"),
        ([_positive("", _NOW)], "recent_positives[0].video_id"),
        ([_positive("v000001", _NOW), _positive("v\n", _NOW)], "recent_positives[1].video_id"),
        ([_positive("v000001", _NOW, weight=0.0)], "recent_positives[0].weight"),
        ([_positive("v000001", _NOW, weight=-1.0)], "recent_positives[0].weight"),
        ([_positive("v000001", _NOW, weight=5.5)], "recent_positives[0].weight"),
        ([_positive("v000001", _NOW, weight=float("nan"))], "recent_positives[0].weight"),
        ([_positive("v000001", _NOW, weight=float("inf"))], "recent_positives[0].weight"),
        (
            [
                pb.RecentPositive(
                    video_id="v1", weight=1.0, occurred_at=Timestamp(seconds=-(10**12))
                )
            ],
            "recent_positives[0].occurred_at",
        ),
    ],
)
def test_bad_recent_positives_are_invalid_argument_naming_the_field(
    store: LocalModelStore, start_server: ServerStarter, recent: list[Any], named: str
) -> None:
    running = start_server(store)
    request = pb.RecommendRequest(user_id="u000001", limit=10, recent_positives=recent)
    with pytest.raises(grpc.RpcError) as caught:
        running.stub.Recommend(request, timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert named in caught.value.details()


def test_known_videos_answers_the_catalogues_ids_in_request_order(
    store: LocalModelStore, models: TwoModels, start_server: ServerStarter
) -> None:
    running = start_server(store)
    first, second = models.first.item_ids[5], models.first.item_ids[2]
    asked = [first, "v-new-upload", second, "", first]

    reply = running.stub.KnownVideos(pb.KnownVideosRequest(video_ids=asked), timeout=5)

    assert list(reply.known_video_ids) == [first, second, first]
    assert reply.model_version == models.first.info.version
    too_many = pb.KnownVideosRequest(video_ids=["v"] * 10_001)
    with pytest.raises(grpc.RpcError) as caught:
        running.stub.KnownVideos(too_many, timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "video_ids" in caught.value.details()


def test_known_videos_without_a_model_is_unavailable(
    tmp_path: Path, start_server: ServerStarter
) -> None:
    running = start_server(LocalModelStore(tmp_path / "empty"), load=False)
    request = pb.KnownVideosRequest(video_ids=["v000001"])
    assert status_of(lambda: running.stub.KnownVideos(request, timeout=5)) == (
        grpc.StatusCode.UNAVAILABLE
    )
