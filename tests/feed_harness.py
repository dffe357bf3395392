"""The web process's feed service, built by the composition root (`app.bootstrap.build_web`)
with fakes as overrides, for the unit tests of the feed's rules."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

from app.bootstrap import Overrides, build_web
from app.settings import Settings
from domain.auth import Principal
from domain.experiments import Experiment
from domain.feed import VideoActivity
from domain.interactions import InteractionEvent, InteractionType, StoredInteraction
from ports.repositories import BoardStore, Leases
from tests.fakes import FixedClock, InMemoryUnitOfWorkFactory
from tests.fakes_feed import FakeRecommender, RecordingAnalytics, RecordingMetrics, ScriptedActivity
from tests.fakes_viewer import FakeCatalogue, InMemoryViewerHistory

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
VIEWER = Principal("u1")


class Harness:
    """The web process's feed, built by the composition root with fakes as overrides."""

    def __init__(
        self,
        experiment: Experiment | None = None,
        pool_size: int = 50,
        load_trending: bool = True,
        exploration: float = 0.0,
        sharing: tuple[BoardStore, Leases, str] | None = None,
    ) -> None:
        self.database = InMemoryUnitOfWorkFactory()
        self._event_ids = itertools.count(1)
        self.recommender = FakeRecommender()
        self.catalogue = FakeCatalogue(set(self.recommender.catalogue))
        activity = ScriptedActivity(
            [
                (NOW - timedelta(minutes=30), VideoActivity(f"t{i:02d}", "like", 100 - i, 0))
                for i in range(80)
            ]
        )
        self.analytics = RecordingAnalytics()
        self.metrics = RecordingMetrics()
        self.clock = FixedClock(NOW)
        history = InMemoryViewerHistory(self.database)
        settings = Settings(
            jwt_secret="k" * 40,
            feed_pool_size=pool_size,
            feed_experiment=experiment_json(experiment),
            feed_exploration=exploration,
        )
        composition = build_web(
            settings,
            Overrides(
                clock=self.clock,
                unit_of_work=self.database,
                activity=activity,
                recommender=self.recommender,
                catalogue=self.catalogue,
                viewer_history=history,
                engagement=history,
                analytics=self.analytics,
                metrics=self.metrics,
                health_checks=[],
                boards=sharing[0] if sharing else None,
                leases=sharing[1] if sharing else None,
                holder=sharing[2] if sharing else None,
            ),
        )
        self.composition = composition
        self.service = composition.dependencies.feed
        self.trending = composition.dependencies.trending
        if load_trending:
            self.refresh_boards()

    def refresh_boards(self) -> None:
        """Trending, popularity and exploration, recomputed as the background tasks do."""
        for task in self.composition.background:
            task.run_once()

    def interact(
        self,
        user_id: str,
        video_id: str,
        kind: InteractionType = InteractionType.LIKE,
        ago: timedelta = timedelta(minutes=1),
    ) -> None:
        """A stored interaction, as the ingestion commits it."""
        at = self.clock.now() - ago
        event = InteractionEvent(f"e{next(self._event_ids)}", user_id, video_id, kind, 20_000, at)
        with self.database() as uow:
            uow.interactions.add([StoredInteraction(event, at, None)])
            uow.commit()


def experiment_json(experiment: Experiment | None) -> str:
    if experiment is None:
        return ""
    variants = [
        {"id": v.id, "weight": v.weight, "algorithm": v.algorithm.value if v.algorithm else None}
        for v in experiment.variants
    ]
    return json.dumps({"name": experiment.name, "variants": variants})
