"""The names of the recommendation sources come from one enum, `domain.feed.Algorithm`: the
OpenAPI document, the request validation, the topic's JSON Schema and the pacts agree with it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from adapters.web.schemas import FeedOut, InteractionIn
from domain.feed import Algorithm
from domain.interactions import ALGORITHM_NAMES
from tests.contract.pact_support import CONTRACTS, PACTS_DIR

pytestmark = pytest.mark.contract

NAMES = [algorithm.value for algorithm in Algorithm]


def _enum_of_algorithm(schema: dict[str, Any]) -> list[str]:
    definitions = schema.get("$defs", {})
    field = schema["properties"]["algorithm"]
    for option in field.get("anyOf", [field]):
        if "$ref" in option:
            return list(definitions[option["$ref"].rsplit("/", 1)[1]]["enum"])
        if "enum" in option:
            return list(option["enum"])
    raise AssertionError(f"no enum in {field}")


def test_the_api_schemas_list_exactly_the_sources() -> None:
    assert _enum_of_algorithm(FeedOut.model_json_schema()) == NAMES
    assert _enum_of_algorithm(InteractionIn.model_json_schema()) == NAMES
    assert list(ALGORITHM_NAMES) == NAMES


def test_the_topic_schema_lists_exactly_the_sources() -> None:
    schema = json.loads((CONTRACTS / "feed.interactions.v1.schema.json").read_text("utf-8"))
    assert schema["properties"]["algorithm"]["enum"] == NAMES
    validator = jsonschema.Draft202012Validator(schema)
    base = {
        "eventId": "e1",
        "userId": "u1",
        "videoId": "v1",
        "interactionType": "like",
        "watchTime": 0,
        "timestamp": "2026-12-02T10:00:00Z",
    }
    for name in NAMES:
        assert validator.is_valid({**base, "algorithm": name})
    assert not validator.is_valid({**base, "algorithm": "random"})


def _algorithms_in(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["algorithm"]] if isinstance(value.get("algorithm"), str) else []
        return found + [name for child in value.values() for name in _algorithms_in(child)]
    if isinstance(value, list):
        return [name for child in value for name in _algorithms_in(child)]
    return []


@pytest.mark.parametrize("pact", sorted(PACTS_DIR.glob("*.json")), ids=lambda p: Path(p).name)
def test_every_algorithm_a_pact_names_is_a_source(pact: Path) -> None:
    document = json.loads(pact.read_text("utf-8"))
    assert set(_algorithms_in(document)) <= set(NAMES)
    for pattern in re.findall(r'"regex":\s*"([^"]*lightfm[^"]*)"', pact.read_text("utf-8")):
        assert {name for name in NAMES if re.fullmatch(json.loads(f'"{pattern}"'), name)} == set(
            NAMES
        ), f"{pact.name}: {pattern} must accept every source's name"
