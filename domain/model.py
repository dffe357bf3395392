"""The recommendation model as the domain sees it: what it is (version, provenance, quality),
how viewer behaviour becomes training signal, and how ranking quality is measured."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from domain.errors import DomainError
from domain.interactions import InteractionType

#: Watch time beyond this earns a view no more credit (short videos: 30 s is a "real" view).
VIEW_FULL_CREDIT_MS = 30_000
#: Views shorter than this are scroll-pasts, not interest.
VIEW_MIN_WATCH_MS = 1_000
#: Weight of the explicit signals and of a completed view, against at most 1.0 for a plain view.
SIGNAL_WEIGHTS: Mapping[InteractionType, float] = MappingProxyType(
    {
        InteractionType.VIEW: 1.0,
        InteractionType.COMPLETE: 2.0,
        InteractionType.LIKE: 3.0,
        InteractionType.COMMENT: 3.0,
        InteractionType.SHARE: 4.0,
        InteractionType.SKIP: 0.0,
        InteractionType.HIDE: 0.0,
    }
)
#: A viewer rewatching one video a hundred times is still one preference: pair weights are capped.
PAIR_WEIGHT_CAP = 5.0

_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_FINGERPRINT = re.compile(r"[0-9a-fA-F]{6,}")


class UnreadableModel(DomainError):
    """A stored model artifact cannot be read back (truncated, or not a model at all). Not
    transient: the same bytes fail the same way."""

    code = "unreadable_model"


@dataclass(frozen=True)
class ModelMetrics:
    """Ranking quality on held-out interactions: fractions in [0, 1] (AUC 0.5 is chance)."""

    precision_at_10: float
    recall_at_10: float
    auc: float


@dataclass(frozen=True)
class ModelInfo:
    """What a trained model is: `version` names it in the model store; `trained_at` and the
    training window [`window_start`, `window_end`) are timezone-aware; the counts are the users,
    items and (raw) interaction events it was trained on; `metrics` is None until evaluated;
    `params` are the training hyper-parameters as strings."""

    version: str
    trained_at: datetime
    window_start: datetime
    window_end: datetime
    n_users: int
    n_items: int
    n_interactions: int
    metrics: ModelMetrics | None
    params: Mapping[str, str]

    def __post_init__(self) -> None:
        if problem := model_version_problem(self.version):
            raise ValueError(f"model version {self.version!r} {problem}")
        for name in ("trained_at", "window_start", "window_end"):
            moment: datetime = getattr(self, name)
            if moment.utcoffset() is None:
                raise ValueError(f"{name} must be timezone-aware")
        # A read-only copy: the caller's dict cannot change a published model's description.
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))


def interaction_weight(interaction_type: InteractionType, watch_time_ms: int) -> float:
    """How strongly one event says "this viewer likes this video" (0 means: not a positive).

    - like 3.0, comment 3.0, share 4.0, complete 2.0 (explicit or strong implicit signals);
    - view: min(watch_time_ms, 30 000) / 30 000, and 0 below 1 000 ms (a scroll-past);
    - skip, hide: 0.

    Events of one (viewer, video) pair combine by `pair_weight`.
    """
    base = SIGNAL_WEIGHTS[interaction_type]
    if interaction_type is not InteractionType.VIEW:
        return base
    if watch_time_ms < VIEW_MIN_WATCH_MS:
        return 0.0
    return base * min(watch_time_ms, VIEW_FULL_CREDIT_MS) / VIEW_FULL_CREDIT_MS


def pair_weight(event_weights: Iterable[float], hidden: bool) -> float:
    """The training weight of one (viewer, video) pair: the sum of its events' weights, capped
    at PAIR_WEIGHT_CAP, and 0 when the viewer hid the video (an explicit "not for me")."""
    if hidden:
        return 0.0
    return min(sum(event_weights), PAIR_WEIGHT_CAP)


def model_version_problem(version: str) -> str | None:
    """What makes `version` unusable as a model version (it names files and object keys)."""
    if not _VERSION.fullmatch(version):
        return "must be 1..128 letters, digits, '.', '_' or '-', starting with a letter or digit"
    return None


def new_model_version(trained_at: datetime, fingerprint: str) -> str:
    """`20261124T020000Z-3fa2c1`: training time in UTC, then the first 6 hex digits of a
    fingerprint of the model, so versions sort by training time and differ per model."""
    if trained_at.utcoffset() is None:
        raise ValueError("trained_at must be timezone-aware")
    if not _FINGERPRINT.fullmatch(fingerprint):
        raise ValueError("fingerprint must be at least 6 hexadecimal digits")
    moment = trained_at.astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{fingerprint[:6].lower()}"


def precision_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Share of the first k recommendations that are relevant; fewer than k count as misses."""
    if k <= 0:
        raise ValueError("k must be positive")
    return sum(1 for item in ranked[:k] if item in relevant) / k


def recall_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Share of the relevant items found in the first k recommendations (relevant not empty)."""
    if not relevant:
        raise ValueError("recall is undefined without relevant items")
    return sum(1 for item in ranked[:k] if item in relevant) / len(relevant)


def model_info_to_json(info: ModelInfo) -> dict[str, object]:
    """The JSON-ready form stored next to an artifact (RFC 3339 UTC timestamps)."""
    return {
        "version": info.version,
        "trained_at": _to_text(info.trained_at),
        "window_start": _to_text(info.window_start),
        "window_end": _to_text(info.window_end),
        "n_users": info.n_users,
        "n_items": info.n_items,
        "n_interactions": info.n_interactions,
        "metrics": None
        if info.metrics is None
        else {
            "precision_at_10": info.metrics.precision_at_10,
            "recall_at_10": info.metrics.recall_at_10,
            "auc": info.metrics.auc,
        },
        "params": dict(info.params),
    }


def model_info_from_json(data: Mapping[str, object]) -> ModelInfo:
    """Inverse of `model_info_to_json`; raises ValueError on a malformed document."""
    try:
        metrics = data["metrics"]
        params = data["params"]
        if not isinstance(params, Mapping):
            raise TypeError("params must be an object")
        return ModelInfo(
            version=str(data["version"]),
            trained_at=_from_text(data["trained_at"]),
            window_start=_from_text(data["window_start"]),
            window_end=_from_text(data["window_end"]),
            n_users=_int(data["n_users"]),
            n_items=_int(data["n_items"]),
            n_interactions=_int(data["n_interactions"]),
            metrics=None
            if metrics is None
            else ModelMetrics(**{key: _float(value) for key, value in _mapping(metrics).items()}),
            params={str(key): str(value) for key, value in params.items()},
        )
    except (KeyError, TypeError) as err:
        raise ValueError(f"malformed model info: {err}") from err


def _to_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _from_text(value: object) -> datetime:
    if not isinstance(value, str):
        raise TypeError("timestamps must be strings")
    moment = datetime.fromisoformat(value)
    if moment.utcoffset() != timedelta(0):
        raise ValueError(f"timestamp {value!r} is not UTC")
    return moment.astimezone(UTC)


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{value!r} is not an integer")
    return value


def _float(value: object) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"{value!r} is not a number")
    return float(value)


def _mapping(value: object) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise TypeError("metrics must be an object")
    return value
