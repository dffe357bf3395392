"""Interactions as columns: the form the parquet export is read into and the LightFM model is
trained from. It belongs to neither (`adapters.parquet_export` and `adapters.lightfm` do not
import each other); it holds numpy arrays and the domain's rules, nothing else.

Ids are dictionary-encoded (a vocabulary plus integer codes per row): that is what pyarrow's
`dictionary_encode()` yields from a parquet export and what the synthetic generator produces,
and it lets ten million rows be grouped with integer arithmetic instead of string sorting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

from domain.interactions import InteractionType
from domain.model import VIEW_FULL_CREDIT_MS, interaction_weight

#: type_codes index this tuple.
INTERACTION_TYPES: tuple[InteractionType, ...] = tuple(InteractionType)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, eq=False)
class TrainingInteractions:
    """One row per event. Row r: user `user_vocab[user_codes[r]]` did
    `INTERACTION_TYPES[type_codes[r]]` to video `video_vocab[video_codes[r]]`, watching
    `watch_time_ms[r]` milliseconds, at `occurred_at_ms[r]` (Unix epoch milliseconds, UTC).

    Vocabularies are numpy unicode arrays and may hold ids no row uses. Dtypes: codes int32,
    type_codes int8, watch_time_ms and occurred_at_ms int64 (converted on construction).
    """

    user_vocab: npt.NDArray[np.str_]
    user_codes: npt.NDArray[np.int32]
    video_vocab: npt.NDArray[np.str_]
    video_codes: npt.NDArray[np.int32]
    type_codes: npt.NDArray[np.int8]
    watch_time_ms: npt.NDArray[np.int64]
    occurred_at_ms: npt.NDArray[np.int64]

    def __post_init__(self) -> None:
        for name, dtype in (
            ("user_vocab", np.str_),
            ("video_vocab", np.str_),
            ("user_codes", np.int32),
            ("video_codes", np.int32),
            ("type_codes", np.int8),
            ("watch_time_ms", np.int64),
            ("occurred_at_ms", np.int64),
        ):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=dtype))
        n = self.user_codes.shape[0]
        columns = (self.video_codes, self.type_codes, self.watch_time_ms, self.occurred_at_ms)
        if any(column.shape != (n,) for column in (self.user_codes, *columns)):
            raise ValueError("all columns must be one-dimensional and of equal length")
        for codes, vocab in (
            (self.user_codes, self.user_vocab),
            (self.video_codes, self.video_vocab),
            (self.type_codes, INTERACTION_TYPES),
        ):
            if n and (codes.min() < 0 or codes.max() >= len(vocab)):
                raise ValueError("a code is outside its vocabulary")

    @classmethod
    def from_columns(
        cls,
        user_ids: Sequence[str] | npt.NDArray[Any],
        video_ids: Sequence[str] | npt.NDArray[Any],
        interaction_types: Sequence[str] | npt.NDArray[Any],
        watch_time_ms: Sequence[int] | npt.NDArray[Any],
        occurred_at: Sequence[datetime] | npt.NDArray[Any],
    ) -> TrainingInteractions:
        """From plain columns of strings; `occurred_at` holds aware datetimes, numpy
        datetime64 (taken as UTC) or integer epoch milliseconds."""
        user_vocab, user_codes = _factorise(user_ids)
        video_vocab, video_codes = _factorise(video_ids)
        names, name_codes = _factorise(interaction_types)
        lookup = np.array(
            [INTERACTION_TYPES.index(InteractionType(name)) for name in names.tolist()],
            dtype=np.int8,
        )
        return cls(
            user_vocab=user_vocab,
            user_codes=user_codes,
            video_vocab=video_vocab,
            video_codes=video_codes,
            type_codes=lookup[name_codes] if len(names) else name_codes.astype(np.int8),
            watch_time_ms=np.asarray(watch_time_ms),
            occurred_at_ms=_epoch_ms(occurred_at),
        )

    def __len__(self) -> int:
        return int(self.user_codes.shape[0])

    def take(
        self, rows: npt.NDArray[np.bool_] | npt.NDArray[np.integer[Any]]
    ) -> TrainingInteractions:
        """The selected rows (a boolean mask or indices), sharing the vocabularies."""
        return TrainingInteractions(
            self.user_vocab,
            self.user_codes[rows],
            self.video_vocab,
            self.video_codes[rows],
            self.type_codes[rows],
            self.watch_time_ms[rows],
            self.occurred_at_ms[rows],
        )

    def concat(self, other: TrainingInteractions) -> TrainingInteractions:
        """These rows then `other`'s; both must share the vocabularies (parts of one split)."""
        if not (
            np.array_equal(self.user_vocab, other.user_vocab)
            and np.array_equal(self.video_vocab, other.video_vocab)
        ):
            raise ValueError("only rows sharing vocabularies can be concatenated")
        return TrainingInteractions(
            self.user_vocab,
            np.concatenate((self.user_codes, other.user_codes)),
            self.video_vocab,
            np.concatenate((self.video_codes, other.video_codes)),
            np.concatenate((self.type_codes, other.type_codes)),
            np.concatenate((self.watch_time_ms, other.watch_time_ms)),
            np.concatenate((self.occurred_at_ms, other.occurred_at_ms)),
        )

    def split_at(self, moment: datetime) -> tuple[TrainingInteractions, TrainingInteractions]:
        """(rows before `moment`, rows at or after it)."""
        before = self.occurred_at_ms < _epoch_ms([moment])[0]
        return self.take(before), self.take(~before)

    def weights(self) -> npt.NDArray[np.float32]:
        """`domain.model.interaction_weight` of every row, vectorised by table lookup."""
        watch = np.clip(self.watch_time_ms, 0, VIEW_FULL_CREDIT_MS)
        return _weight_table()[self.type_codes, watch]


def _factorise(
    values: Sequence[str] | npt.NDArray[Any],
) -> tuple[npt.NDArray[np.str_], npt.NDArray[np.int32]]:
    vocab, codes = np.unique(np.asarray(values, dtype=np.str_), return_inverse=True)
    return vocab, codes.astype(np.int32)


@cache
def _weight_table() -> npt.NDArray[np.float32]:
    # interaction_weight depends on watch time only up to VIEW_FULL_CREDIT_MS, so one row per
    # type and one column per millisecond up to it reproduce the rule exactly.
    table = np.array(
        [
            [interaction_weight(kind, ms) for ms in range(VIEW_FULL_CREDIT_MS + 1)]
            for kind in INTERACTION_TYPES
        ],
        dtype=np.float32,
    )
    table.flags.writeable = False
    return table


def _epoch_ms(values: Sequence[datetime] | npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    array = np.asarray(values)
    if np.issubdtype(array.dtype, np.datetime64):
        return array.astype("datetime64[ms]").astype(np.int64)
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.int64)
    moments: list[datetime] = list(values)
    if any(moment.utcoffset() is None for moment in moments):
        raise ValueError("occurred_at must be timezone-aware")
    one_ms = timedelta(milliseconds=1)
    return np.array([(moment - _EPOCH) // one_ms for moment in moments], dtype=np.int64)
