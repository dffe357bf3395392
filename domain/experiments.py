"""Experiment assignment: deterministic, sticky per viewer, weighted variants.

Configuration (FEED_EXPERIMENT) is JSON, for example::

    {"name": "ranker-2026-11",
     "variants": [{"id": "control", "weight": 10, "algorithm": "trending"},
                  {"id": "lightfm", "weight": 90}]}

A variant's `"algorithm"` names the recommendation source that ranks its viewers' feed (any
`domain.feed.Algorithm` the composition root configures, e.g. `"popularity"`); without one the
default source (LightFM) does. A variant whose algorithm is the fallback source (`"trending"`)
is a control group: it is served trending and the response says `fallbackReason:
experiment_control`. Other variants get their source and the usual fallbacks. A viewer's
bucket is SHA-256 of "<experiment name>:<userId>", so the same
viewer always lands in the same variant while the configuration stays the same.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from domain.feed import Algorithm
from domain.interactions import id_problem


class ExperimentConfigError(ValueError):
    """The experiment configuration cannot be used."""


@dataclass(frozen=True)
class Variant:
    id: str
    weight: int
    algorithm: Algorithm | None = None


@dataclass(frozen=True)
class Experiment:
    name: str
    variants: tuple[Variant, ...]

    def __post_init__(self) -> None:
        if not self.variants or any(v.weight < 0 for v in self.variants):
            raise ExperimentConfigError("an experiment needs variants with weights >= 0")
        if sum(v.weight for v in self.variants) <= 0:
            raise ExperimentConfigError("the variants' weights must add up to more than 0")
        if len({v.id for v in self.variants}) != len(self.variants):
            raise ExperimentConfigError("variant ids must be unique")

    def assign(self, user_id: str) -> Variant:
        total = sum(v.weight for v in self.variants)
        digest = hashlib.sha256(f"{self.name}:{user_id}".encode()).digest()
        bucket = int.from_bytes(digest[:8], "big") % total
        for variant in self.variants:
            if bucket < variant.weight:
                return variant
            bucket -= variant.weight
        raise AssertionError("unreachable: buckets cover the total weight")


def parse_experiment(text: str) -> Experiment | None:
    """The experiment described by `text` (JSON, see the module docstring); None when empty."""
    if not text.strip():
        return None
    try:
        raw = json.loads(text)
        variants = tuple(
            Variant(
                id=str(item["id"]),
                weight=int(item["weight"]),
                algorithm=Algorithm(item["algorithm"]) if item.get("algorithm") else None,
            )
            for item in raw["variants"]
        )
        experiment = Experiment(name=str(raw["name"]), variants=variants)
    except (ValueError, KeyError, TypeError) as err:
        raise ExperimentConfigError(f"invalid experiment configuration: {err}") from err
    for identifier in (experiment.name, *(v.id for v in variants)):
        if problem := id_problem(identifier):
            raise ExperimentConfigError(f"experiment/variant id {identifier!r} {problem}")
    return experiment
