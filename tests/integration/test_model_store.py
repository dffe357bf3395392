"""One contract for every ModelStore: a local folder, S3 on a real moto server, and the
in-memory fake the retrain's unit tests use (`tests.fakes_retrain.InMemoryModelStore`).

The S3 store runs against `moto_server` (moto's standalone S3 server, started as a
subprocess on 127.0.0.1 and a free port by tests.servers.MotoS3Server, stopped afterwards).
"""

from __future__ import annotations

import importlib.metadata
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from adapters.model_store import LocalModelStore, S3ModelStore, model_store_from_uri
from domain.errors import Conflict, DependencyUnavailable, InvalidInput, NotFound
from domain.model import ModelInfo, ModelMetrics
from ports.model_store import ModelStore
from tests.fakes_retrain import InMemoryModelStore
from tests.servers import MotoS3Server, RecordProperty, free_port, running_moto

pytestmark = pytest.mark.integration

BUCKET = "models"
T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def make_info(version: str, trained_at: datetime = T0) -> ModelInfo:
    return ModelInfo(
        version=version,
        trained_at=trained_at,
        window_start=trained_at - timedelta(days=30),
        window_end=trained_at,
        n_users=10,
        n_items=20,
        n_interactions=300,
        metrics=ModelMetrics(0.2, 0.3, 0.8),
        params={"loss": "warp", "no_components": "8"},
    )


@dataclass
class StoreUnderTest:
    store: ModelStore
    #: Writes raw bytes at a path relative to the store's root, bypassing the store.
    write_raw: Callable[[str, bytes], None]


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3Server]:
    with running_moto(tmp_path_factory.mktemp("moto"), "model store S3", BUCKET) as server:
        yield server


def local_store(tmp_path: Path) -> StoreUnderTest:
    root = tmp_path / "models"

    def write_raw(relative: str, data: bytes) -> None:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)

    return StoreUnderTest(LocalModelStore(root), write_raw)


def memory_store() -> StoreUnderTest:
    store = InMemoryModelStore()

    def write_raw(relative: str, data: bytes) -> None:
        # Only an artifact without its info is ever written raw; the fake keeps blobs by version.
        folder, version, name = relative.split("/")
        assert (folder, name) == ("versions", "artifact.bin"), relative
        store.blobs[version] = data

    return StoreUnderTest(store, write_raw)


def s3_store(moto: MotoS3Server, record_property: RecordProperty) -> StoreUnderTest:
    prefix = f"{BUCKET}/run-{uuid.uuid4().hex[:8]}"
    address = moto.endpoint.removeprefix("http://")
    version = importlib.metadata.version("moto")
    record_property("s3_server", f"moto_server {version} subprocess at {moto.endpoint}")
    print(f"S3 store tested against moto_server {version} at {moto.endpoint}")
    raw = pafs.S3FileSystem(
        endpoint_override=address,
        scheme="http",
        access_key="test",
        secret_key="test",
        region="us-east-1",
    )

    def write_raw(relative: str, data: bytes) -> None:
        with raw.open_output_stream(f"{prefix}/{relative}") as stream:
            stream.write(data)

    return StoreUnderTest(s3_at(f"s3://{prefix}", moto.endpoint), write_raw)


def s3_at(uri: str, endpoint: str, max_attempts: int = 3) -> S3ModelStore:
    return S3ModelStore(
        uri,
        endpoint_override=endpoint,
        access_key="test",
        secret_key="test",
        region="us-east-1",
        max_attempts=max_attempts,
    )


@pytest.fixture(params=["local", "s3", "memory"])
def subject(
    request: pytest.FixtureRequest, tmp_path: Path, record_property: RecordProperty
) -> StoreUnderTest:
    if request.param == "local":
        return local_store(tmp_path)
    if request.param == "memory":
        return memory_store()
    return s3_store(request.getfixturevalue("moto"), record_property)


def test_an_empty_store_has_nothing_stored_and_nothing_published(subject: StoreUnderTest) -> None:
    with pytest.raises(NotFound):
        subject.store.info("20261120T020000Z-aaaaaa")
    assert subject.store.published() is None


def test_a_stored_artifact_reads_back_byte_for_byte_with_its_info(
    subject: StoreUnderTest,
) -> None:
    blob = bytes(range(256)) * 40_000  # 10 MB: several multipart parts on S3
    info = make_info("20261120T020000Z-aaaaaa")
    subject.store.put(info.version, blob, info)
    assert subject.store.get(info.version) == blob
    assert subject.store.info(info.version) == info


def test_versions_are_kept_apart(subject: StoreUnderTest) -> None:
    for name, age_days in (("b", 2), ("c", 0), ("a", 1)):
        subject.store.put(name, name.encode(), make_info(name, T0 - timedelta(days=age_days)))
    assert [subject.store.get(name) for name in ("a", "b", "c")] == [b"a", b"b", b"c"]
    assert subject.store.info("b").trained_at == T0 - timedelta(days=2)


def test_unknown_versions_are_not_found(subject: StoreUnderTest) -> None:
    for version in ("20261120T020000Z-ffffff", "../../etc/passwd"):
        with pytest.raises(NotFound):
            subject.store.get(version)
        with pytest.raises(NotFound):
            subject.store.info(version)
        with pytest.raises(NotFound):
            subject.store.publish(version)
    assert subject.store.published() is None


def test_a_stored_version_is_never_overwritten(subject: StoreUnderTest) -> None:
    subject.store.put("v1", b"first", make_info("v1"))
    with pytest.raises(Conflict):
        subject.store.put("v1", b"second", make_info("v1"))
    assert subject.store.get("v1") == b"first"


def test_put_refuses_an_unsafe_name_or_an_info_of_another_version(
    subject: StoreUnderTest,
) -> None:
    with pytest.raises(InvalidInput):
        subject.store.put("../escape", b"x", make_info("v1"))
    with pytest.raises(ValueError, match="describes version"):
        subject.store.put("v2", b"x", make_info("v1"))
    for version in ("v1", "v2"):
        with pytest.raises(NotFound):
            subject.store.info(version)


def test_the_published_pointer_moves_only_on_publish(subject: StoreUnderTest) -> None:
    store = subject.store
    store.put("v1", b"one", make_info("v1", T0))
    store.publish("v1")
    store.put("v2", b"two", make_info("v2", T0 + timedelta(days=1)))
    assert store.published() == "v1"
    store.publish("v2")
    assert store.published() == "v2"
    with pytest.raises(NotFound):
        store.publish("v3")
    assert store.published() == "v2"


def test_an_artifact_without_its_info_is_invisible(subject: StoreUnderTest) -> None:
    # What a put interrupted between its two writes leaves behind.
    subject.write_raw("versions/half/artifact.bin", b"partial")
    with pytest.raises(NotFound):
        subject.store.info("half")
    with pytest.raises(NotFound):
        subject.store.get("half")
    with pytest.raises(NotFound):
        subject.store.publish("half")


def test_an_unreachable_s3_endpoint_is_a_dependency_failure() -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    store = s3_at(f"s3://{BUCKET}/x", dead, max_attempts=1)
    operations: list[Callable[[], object]] = [
        store.published,
        lambda: store.info("v1"),
        lambda: store.get("v1"),
        lambda: store.publish("v1"),
        lambda: store.put("v1", b"x", make_info("v1")),
    ]
    for operation in operations:
        with pytest.raises(DependencyUnavailable) as caught:
            operation()
        assert caught.value.component == "model_store"


def test_an_unusable_local_folder_is_a_dependency_failure(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    store = LocalModelStore(not_a_folder)
    with pytest.raises(DependencyUnavailable) as caught:
        store.put("v1", b"x", make_info("v1"))
    assert caught.value.component == "model_store"


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("var/models", LocalModelStore),
        ("/srv/models", LocalModelStore),
        ("file:///srv/models", LocalModelStore),
        ("s3://bucket/models", S3ModelStore),
        ("s3://bucket", S3ModelStore),
    ],
)
def test_the_uri_chooses_the_store(uri: str, kind: type) -> None:
    assert isinstance(model_store_from_uri(uri, s3_endpoint="http://127.0.0.1:9"), kind)


def test_a_file_uri_names_its_folder() -> None:
    store = model_store_from_uri("file:///srv/my%20models")
    assert isinstance(store, LocalModelStore)
    assert store.root == Path("/srv/my models")


@pytest.mark.parametrize("uri", ["ftp://host/models", "s3:///no-bucket"])
def test_other_uris_are_refused(uri: str) -> None:
    with pytest.raises(ValueError, match="URI"):
        model_store_from_uri(uri)
