import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Personalization(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PERSONALIZATION_UNSPECIFIED: _ClassVar[Personalization]
    PERSONALIZATION_MODEL: _ClassVar[Personalization]
    PERSONALIZATION_REALTIME: _ClassVar[Personalization]
PERSONALIZATION_UNSPECIFIED: Personalization
PERSONALIZATION_MODEL: Personalization
PERSONALIZATION_REALTIME: Personalization

class RecommendRequest(_message.Message):
    __slots__ = ("user_id", "limit", "exclude_video_ids", "request_id", "recent_positives")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_VIDEO_IDS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RECENT_POSITIVES_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    limit: int
    exclude_video_ids: _containers.RepeatedScalarFieldContainer[str]
    request_id: str
    recent_positives: _containers.RepeatedCompositeFieldContainer[RecentPositive]
    def __init__(self, user_id: _Optional[str] = ..., limit: _Optional[int] = ..., exclude_video_ids: _Optional[_Iterable[str]] = ..., request_id: _Optional[str] = ..., recent_positives: _Optional[_Iterable[_Union[RecentPositive, _Mapping]]] = ...) -> None: ...

class RecentPositive(_message.Message):
    __slots__ = ("video_id", "weight", "occurred_at")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    weight: float
    occurred_at: _timestamp_pb2.Timestamp
    def __init__(self, video_id: _Optional[str] = ..., weight: _Optional[float] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ScoredVideo(_message.Message):
    __slots__ = ("video_id", "score")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    score: float
    def __init__(self, video_id: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class RecommendResponse(_message.Message):
    __slots__ = ("items", "model_version", "request_id", "personalization")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PERSONALIZATION_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ScoredVideo]
    model_version: str
    request_id: str
    personalization: Personalization
    def __init__(self, items: _Optional[_Iterable[_Union[ScoredVideo, _Mapping]]] = ..., model_version: _Optional[str] = ..., request_id: _Optional[str] = ..., personalization: _Optional[_Union[Personalization, str]] = ...) -> None: ...

class KnownVideosRequest(_message.Message):
    __slots__ = ("video_ids",)
    VIDEO_IDS_FIELD_NUMBER: _ClassVar[int]
    video_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, video_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class KnownVideosResponse(_message.Message):
    __slots__ = ("known_video_ids", "model_version")
    KNOWN_VIDEO_IDS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    known_video_ids: _containers.RepeatedScalarFieldContainer[str]
    model_version: str
    def __init__(self, known_video_ids: _Optional[_Iterable[str]] = ..., model_version: _Optional[str] = ...) -> None: ...

class DescribeModelRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LoadModelRequest(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: str
    def __init__(self, version: _Optional[str] = ...) -> None: ...

class ModelMetrics(_message.Message):
    __slots__ = ("precision_at_10", "recall_at_10", "auc")
    PRECISION_AT_10_FIELD_NUMBER: _ClassVar[int]
    RECALL_AT_10_FIELD_NUMBER: _ClassVar[int]
    AUC_FIELD_NUMBER: _ClassVar[int]
    precision_at_10: float
    recall_at_10: float
    auc: float
    def __init__(self, precision_at_10: _Optional[float] = ..., recall_at_10: _Optional[float] = ..., auc: _Optional[float] = ...) -> None: ...

class ModelDescription(_message.Message):
    __slots__ = ("version", "trained_at", "n_users", "n_items", "n_interactions", "window_start", "window_end", "metrics", "params", "loaded_at")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TRAINED_AT_FIELD_NUMBER: _ClassVar[int]
    N_USERS_FIELD_NUMBER: _ClassVar[int]
    N_ITEMS_FIELD_NUMBER: _ClassVar[int]
    N_INTERACTIONS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_FIELD_NUMBER: _ClassVar[int]
    version: str
    trained_at: _timestamp_pb2.Timestamp
    n_users: int
    n_items: int
    n_interactions: int
    window_start: _timestamp_pb2.Timestamp
    window_end: _timestamp_pb2.Timestamp
    metrics: ModelMetrics
    params: _containers.ScalarMap[str, str]
    loaded_at: _timestamp_pb2.Timestamp
    def __init__(self, version: _Optional[str] = ..., trained_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., n_users: _Optional[int] = ..., n_items: _Optional[int] = ..., n_interactions: _Optional[int] = ..., window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., metrics: _Optional[_Union[ModelMetrics, _Mapping]] = ..., params: _Optional[_Mapping[str, str]] = ..., loaded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
