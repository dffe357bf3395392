"""`lightfm.v2025_9` stays wire-compatible with its committed descriptor snapshot."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from contracts.proto_snapshot import SNAPSHOT_PATH, breaking_changes, current_snapshot, render

pytestmark = [pytest.mark.contract]

RECOMMEND_REQUEST = ".lightfm.v2025_9.RecommendRequest"
SERVICE = "lightfm.v2025_9.Recommender"


def test_the_stubs_are_wire_compatible_with_the_committed_snapshot() -> None:
    committed = json.loads(SNAPSHOT_PATH.read_text(encoding="utf-8"))
    assert breaking_changes(committed, current_snapshot()) == [], (
        "a wire-breaking change to lightfm.v2025_9: make a new package version instead, or, "
        "if this is deliberate, run `python -m contracts.proto_snapshot --write`"
    )


def test_the_snapshot_renders_stably() -> None:
    snapshot = current_snapshot()
    assert json.loads(render(snapshot)) == snapshot


def _fields(s: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = s["messages"][RECOMMEND_REQUEST]["fields"]
    return fields


def _methods(s: dict[str, Any]) -> dict[str, Any]:
    methods: dict[str, Any] = s["services"][SERVICE]["methods"]
    return methods


def _remove_field(s: dict[str, Any]) -> None:
    del _fields(s)["limit"]


def _renumber_field(s: dict[str, Any]) -> None:
    _fields(s)["limit"]["number"] = 7


def _retype_field(s: dict[str, Any]) -> None:
    _fields(s)["limit"]["type"] = "TYPE_INT64"


def _relabel_field(s: dict[str, Any]) -> None:
    _fields(s)["exclude_video_ids"]["label"] = "LABEL_OPTIONAL"


def _rename_field(s: dict[str, Any]) -> None:
    _fields(s)["max_items"] = _fields(s).pop("limit")


def _rename_message(s: dict[str, Any]) -> None:
    s["messages"][".lightfm.v2025_9.RankRequest"] = s["messages"].pop(RECOMMEND_REQUEST)


def _rename_service(s: dict[str, Any]) -> None:
    s["services"]["lightfm.v2025_9.Ranker"] = s["services"].pop(SERVICE)


def _remove_method(s: dict[str, Any]) -> None:
    del _methods(s)["DescribeModel"]


def _change_method_input(s: dict[str, Any]) -> None:
    _methods(s)["Recommend"]["input_type"] = ".lightfm.v2025_9.DescribeModelRequest"


def _make_method_streaming(s: dict[str, Any]) -> None:
    _methods(s)["Recommend"]["server_streaming"] = True


BREAKING: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "field removed": (_remove_field, "field .lightfm.v2025_9.RecommendRequest.limit removed"),
    "field renumbered": (_renumber_field, "RecommendRequest.limit number changed: 2 -> 7"),
    "field retyped": (_retype_field, "type changed: TYPE_UINT32 -> TYPE_INT64"),
    "field relabelled": (_relabel_field, "label changed: LABEL_REPEATED -> LABEL_OPTIONAL"),
    "field renamed": (_rename_field, "(number 2 is now 'max_items')"),
    "message renamed": (_rename_message, "message .lightfm.v2025_9.RecommendRequest removed"),
    "service renamed": (_rename_service, "service lightfm.v2025_9.Recommender removed"),
    "method removed": (_remove_method, "method lightfm.v2025_9.Recommender.DescribeModel"),
    "method input changed": (_change_method_input, "Recommend input_type changed"),
    "method made streaming": (_make_method_streaming, "server_streaming changed: False -> True"),
}


@pytest.mark.parametrize("change", sorted(BREAKING))
def test_each_wire_breaking_change_is_caught(change: str) -> None:
    mutate, expected = BREAKING[change]
    old = current_snapshot()
    new = copy.deepcopy(old)
    mutate(new)
    problems = breaking_changes(old, new)
    assert len(problems) >= 1
    assert any(expected in problem for problem in problems), problems


def test_additions_are_allowed() -> None:
    old = current_snapshot()
    new = copy.deepcopy(old)
    _fields(new)["locale"] = {
        "number": 5,
        "type": "TYPE_STRING",
        "type_name": "",
        "label": "LABEL_OPTIONAL",
    }
    new["messages"][".lightfm.v2025_9.ExplainRequest"] = {"fields": {}}
    _methods(new)["Explain"] = {
        "input_type": ".lightfm.v2025_9.ExplainRequest",
        "output_type": ".lightfm.v2025_9.ModelDescription",
        "client_streaming": False,
        "server_streaming": False,
    }
    assert breaking_changes(old, new) == []
