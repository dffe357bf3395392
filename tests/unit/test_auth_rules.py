from __future__ import annotations

import pytest

from domain.auth import SERVICE_SCOPE, Principal, ensure_may_act_for
from domain.errors import Forbidden

pytestmark = pytest.mark.unit


def test_a_viewer_acts_for_themselves() -> None:
    ensure_may_act_for(Principal("u1"), "u1")


def test_a_viewer_may_not_act_for_another_viewer() -> None:
    with pytest.raises(Forbidden):
        ensure_may_act_for(Principal("u1"), "u2")


def test_a_service_token_acts_for_anyone() -> None:
    ensure_may_act_for(Principal("ingest-bot", frozenset({SERVICE_SCOPE})), "u2")
