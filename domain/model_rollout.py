"""Putting a model that passed the gate into service, or leaving the serving one in place.

Order (each step only after the one before succeeded):

1. put the candidate in the model store, not published;
2. `LoadModel(candidate)` on the model service, which must answer with that version;
3. move the store's published pointer to the candidate;
4. `DescribeModel` must name the candidate. If it names the old model, the service's poll of
   the published pointer read the old pointer between 2 and 3 and swapped it back: one more
   `LoadModel`, then `DescribeModel` again.

Why this order: the pointer is what a restarted model service loads, and what its poll
restores. It moves only once the service has taken the new model, so a model service that is
down at publish time leaves both the pointer and what is served as they were. After a failure
at 2-4, `roll_back` puts the pointer back and asks the service to load the previous version
again; if the service cannot be reached for that, its next poll of the pointer does it.
A worker killed between 2 and 3 leaves the service on the new model with the old pointer: the
poll restores the old model within `LIGHTFM_POLL_INTERVAL_S`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from domain.errors import DependencyUnavailable, DomainError
from domain.model import ModelMetrics
from domain.retrain import NotServing

if TYPE_CHECKING:  # ports are the domain's types, never its runtime imports
    from ports.model_store import ModelStore
    from ports.retrain import CandidateModel, ModelLab, ModelServiceAdmin

log = logging.getLogger(__name__)


class ModelRollout:
    def __init__(self, lab: ModelLab, store: ModelStore, admin: ModelServiceAdmin) -> None:
        self._lab = lab
        self._store = store
        self._admin = admin

    def serving(self) -> str | None:
        """The version serving now, as far as the store's published pointer says."""
        return self._store.published()

    def announce(self, candidate: CandidateModel, metrics: ModelMetrics) -> str:
        """Steps 1 and 2; returns the stored version."""
        version = self._lab.keep(candidate, metrics)
        served = self._admin.load(version)
        if served != version:
            raise NotServing(f"asked to load {version}, the model service serves {served}")
        return version

    def confirm(self, version: str) -> None:
        """Steps 3 and 4."""
        self._store.publish(version)
        served = self._admin.serving_version()
        if served != version:
            log.info("model service serves %s, not %s: loading again", served, version)
            self._admin.load(version)
            served = self._admin.serving_version()
        if served != version:
            raise NotServing(f"published {version}, but the model service serves {served}")

    def roll_back(self, previous: str | None) -> str:
        """Put `previous` back as the published and served model. Returns what happened, for the
        run's note; what the store and the service declare (`DomainError`) goes into that note,
        anything else is a bug and propagates."""
        if previous is None:
            return "no previous model to restore"
        problems = []
        try:
            if self._store.published() != previous:
                self._store.publish(previous)
        except DomainError as err:
            problems.append(f"the published pointer: {describe_error(err)}")
        try:
            self._admin.load(previous)
        except DomainError as err:
            problems.append(f"the model service: {describe_error(err)}")
        if not problems:
            return f"restored {previous} as the serving model"
        return (
            f"restoring {previous} failed for {'; '.join(problems)}; the model service "
            "returns to the published model at its next poll"
        )


def describe_error(err: BaseException) -> str:
    """One line for the run log: what failed, without a traceback."""
    if isinstance(err, DependencyUnavailable):
        return f"{err.component} unavailable: {err.message}"
    if isinstance(err, DomainError):
        return f"{type(err).__name__}: {err.message}"
    return f"{type(err).__name__}: {err}"
