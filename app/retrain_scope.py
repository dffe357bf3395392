"""What `feedrec retrain --now` did not train on, and why: an event posted a moment ago is not
ignored, it is waiting for the export's lag, or it sits in the held-out day."""

from __future__ import annotations

from adapters.sql.engine import make_engine
from adapters.sql.operator_view import OperatorView
from app.settings import Settings
from domain.errors import DependencyUnavailable
from domain.retrain import RetrainPolicy, RetrainRun


def describe_left_out(settings: Settings, run: RetrainRun) -> str:
    """A few lines for the operator; counts come from the service's database after the run."""
    held_out = RetrainPolicy().held_out
    held_out_from = run.started_at - held_out
    engine = make_engine(settings.resolved_database_url)
    try:
        view = OperatorView(engine)
        waiting = view.not_exported()
        evaluated = view.occurred_since(held_out_from)
    except DependencyUnavailable as err:
        return f"Left out of this run: cannot count it ({err.message})."
    finally:
        engine.dispose()
    return left_out_text(settings.export_lag_s, held_out_from.isoformat(), waiting, evaluated)


def left_out_text(lag_s: int, held_out_from: str, waiting: int, evaluated: int) -> str:
    return (
        "Left out of this run's training:\n"
        f"  {waiting:,} interactions not exported yet: the export takes a row once it has been "
        f"stored for EXPORT_LAG_S ({lag_s} s), so that no row still being committed is skipped; "
        "the next run takes them.\n"
        f"  {evaluated:,} interactions that occurred since {held_out_from}: the newest day is "
        "held out to evaluate the candidate and the serving model on, not trained on."
    )
