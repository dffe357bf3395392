"""The limiter's memory grows with client addresses, never with tokens (issue #15, item 9:
50,000 distinct bad tokens used to cost 30 MB of counters)."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest

from adapters.sql.migrations import upgrade_database
from app.bootstrap import Overrides
from app.web import create_app
from tests.fakes_feed import FakeRecommender
from tests.web_support import bearer, settings_for

pytestmark = pytest.mark.integration


def test_distinct_bad_tokens_share_one_counter_per_address(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, rate_limit_feed="5000/minute")
    upgrade_database(settings.resolved_database_url)
    app = create_app(settings, Overrides(recommender=FakeRecommender()), start_background=False)
    client = app.test_client()

    for n in range(2_000):
        forged = jwt.encode({"sub": "u1", "n": n}, "forged-" + "x" * 40, "HS256")
        response = client.get("/feed/recommendations?userId=u1", headers=bearer(forged))
        assert response.status_code == 401

    (limiter,) = app.extensions["limiter"]
    assert len(limiter.storage.storage) == 1
