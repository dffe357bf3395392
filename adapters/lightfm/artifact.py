"""The trained model as stored: id maps, representations with biases, what each user has seen.

Serialised as a plain `.npz` (a zip of `.npy` members, read with `allow_pickle=False`, so
loading an artifact never runs code) with fixed member timestamps, so the same model always
gives the same bytes.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from domain.model import ModelInfo, model_info_from_json, model_info_to_json

FORMAT = "feedrec.lightfm.v1"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_ARRAYS = (
    "user_embeddings",
    "user_biases",
    "item_embeddings",
    "item_biases",
    "seen_indptr",
    "seen_indices",
)
#: Artifacts written before the prior existed have no `item_prior` member: it reads as zeros.
#: Only large catalogues carry `ann_index` (`adapters.lightfm.ann`); without it ranking is exact.
_OPTIONAL = ("item_prior", "ann_index")


@dataclass(frozen=True, eq=False)
class ModelArtifact:
    """A LightFM model reduced to what serving needs.

    Row i of `user_embeddings` / `user_biases` is user `user_ids[i]`; row j of
    `item_embeddings` / `item_biases` is video `item_ids[j]`. LightFM's score of (i, j) is
    `user_embeddings[i] @ item_embeddings[j] + user_biases[i] + item_biases[j]`.
    `seen_indices[seen_indptr[i]:seen_indptr[i + 1]]` are the item indices (ascending) user i
    interacted with in the training window, whatever the interaction type: never re-recommended.

    Shapes and dtypes: embeddings float32 [n, k]; biases float32 [n]; seen_indptr int64
    [n_users + 1]; seen_indices int32 [n_seen]. Arrays are converted to those dtypes.
    """

    info: ModelInfo
    user_ids: list[str]
    item_ids: list[str]
    user_embeddings: npt.NDArray[np.float32]
    user_biases: npt.NDArray[np.float32]
    item_embeddings: npt.NDArray[np.float32]
    item_biases: npt.NDArray[np.float32]
    seen_indptr: npt.NDArray[np.int64]
    seen_indices: npt.NDArray[np.int32]
    #: float32 [n_items], added to `item_biases` when ranking (`adapters.lightfm.prior`); None
    #: reads as zeros: no prior blended in.
    item_prior: npt.NDArray[np.float32] | None = None
    #: uint8 [n_bytes]: a serialised candidate index over the ranking vectors, built by the
    #: nightly job for large catalogues (`adapters.lightfm.ann`); None: rank by exact scan.
    ann_index: npt.NDArray[np.uint8] | None = None

    def __post_init__(self) -> None:
        if self.ann_index is not None:
            blob = np.ascontiguousarray(self.ann_index, dtype=np.uint8)
            if blob.ndim != 1:
                raise ValueError(f"ann_index must be one-dimensional, got shape {blob.shape}")
            object.__setattr__(self, "ann_index", blob)
        prior = np.zeros(len(self.item_ids)) if self.item_prior is None else self.item_prior
        object.__setattr__(self, "item_prior", np.ascontiguousarray(prior, dtype=np.float32))
        for name, dtype in zip(_ARRAYS, (np.float32,) * 4 + (np.int64, np.int32), strict=True):
            object.__setattr__(self, name, np.ascontiguousarray(getattr(self, name), dtype=dtype))
        n_users, n_items = len(self.user_ids), len(self.item_ids)
        k = self.user_embeddings.shape[1] if self.user_embeddings.ndim == 2 else -1
        expected = {
            "user_embeddings": (n_users, k),
            "user_biases": (n_users,),
            "item_embeddings": (n_items, k),
            "item_biases": (n_items,),
            "item_prior": (n_items,),
            "seen_indptr": (n_users + 1,),
            "seen_indices": (int(self.seen_indptr[-1]) if len(self.seen_indptr) else -1,),
        }
        for name, shape in expected.items():
            actual = getattr(self, name).shape
            if actual != shape:
                raise ValueError(f"{name} has shape {actual}, expected {shape}")
        if len(set(self.user_ids)) != n_users or len(set(self.item_ids)) != n_items:
            raise ValueError("user and item ids must be unique")
        if self.seen_indptr[0] != 0 or np.any(np.diff(self.seen_indptr) < 0):
            raise ValueError("seen_indptr must start at 0 and never decrease")
        indices = self.seen_indices
        if indices.size and (indices.min() < 0 or indices.max() >= n_items):
            raise ValueError("seen_indices must index item_ids")

    @property
    def ranking_biases(self) -> npt.NDArray[np.float32]:
        """Per item, what ranking adds to the user-item product: the bias plus the prior."""
        assert self.item_prior is not None
        return np.asarray(self.item_biases + self.item_prior, dtype=np.float32)

    @property
    def no_components(self) -> int:
        return int(self.user_embeddings.shape[1])

    def seen_by(self, user_index: int) -> npt.NDArray[np.int32]:
        """Item indices user `user_index` interacted with in training, ascending."""
        return self.seen_indices[self.seen_indptr[user_index] : self.seen_indptr[user_index + 1]]

    def to_bytes(self) -> bytes:
        """The artifact as `.npz` bytes; identical models give identical bytes."""
        buffer = io.BytesIO()
        self.write(buffer)
        return buffer.getvalue()

    def write(self, stream: BinaryIO) -> None:
        """Write `to_bytes()`'s bytes to `stream` (seekable) without holding them in memory: a
        10M-video artifact is ~6 GB."""
        header = {"format": FORMAT, "info": model_info_to_json(self.info)}
        members: dict[str, npt.NDArray[Any]] = {
            "header": np.frombuffer(json.dumps(header, sort_keys=True).encode(), dtype=np.uint8),
            "user_ids": np.array(self.user_ids, dtype=np.str_),
            "item_ids": np.array(self.item_ids, dtype=np.str_),
        }
        members.update({name: getattr(self, name) for name in _ARRAYS})
        assert self.item_prior is not None
        if self.item_prior.any():  # a model without a prior keeps its bytes as before
            members["item_prior"] = self.item_prior
        if self.ann_index is not None:
            members["ann_index"] = self.ann_index
        with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, array in members.items():
                # ZipInfo with a fixed date: np.savez would stamp the current time.
                entry = zipfile.ZipInfo(f"{name}.npy", _ZIP_EPOCH)
                with zf.open(entry, "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, array, allow_pickle=False)

    @classmethod
    def from_bytes(cls, blob: bytes) -> ModelArtifact:
        """Inverse of `to_bytes`; raises ValueError when `blob` is not such an artifact."""
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
                header = json.loads(npz["header"].tobytes().decode())
                if header.get("format") != FORMAT:
                    raise ValueError(f"unknown artifact format {header.get('format')!r}")
                return cls(
                    info=model_info_from_json(header["info"]),
                    user_ids=npz["user_ids"].tolist(),
                    item_ids=npz["item_ids"].tolist(),
                    user_embeddings=npz["user_embeddings"],
                    user_biases=npz["user_biases"],
                    item_embeddings=npz["item_embeddings"],
                    item_biases=npz["item_biases"],
                    seen_indptr=npz["seen_indptr"],
                    seen_indices=npz["seen_indices"],
                    item_prior=npz["item_prior"] if "item_prior" in npz.files else None,
                    ann_index=npz["ann_index"] if "ann_index" in npz.files else None,
                )
        except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as err:
            raise ValueError(f"not a model artifact: {err}") from err
