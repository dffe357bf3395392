"""The best rank-k approximation of a model's scores, at a cost linear in users and items.

A seed average publishes user and item vectors K = seeds x components wide, and every
Recommend scans n_items x (width + 1) floats, so serving cost grows linearly with K. The
scores U Vᵀ of rank <= K are replaced by their best rank-k approximation (Eckart-Young: the
truncated SVD), without forming the users x items matrix: with U = Qu Ru and V = Qv Rv
(orthonormal Q, R taken from the K x K Gram matrices), U Vᵀ = Qu (Ru Rvᵀ) Qvᵀ, so the SVD of
the K x K core gives the SVD of the scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

#: Eigenvalues of a Gram matrix below this fraction of its largest are taken as 0 (a
#: pseudo-inverse): seeds' vectors can be nearly collinear, and 1/sqrt of round-off is noise.
RELATIVE_TOLERANCE = 1e-10
#: Rows per block of the Gram and the products, so no float64 copy of all vectors is made.
_BLOCK = 65_536

Floats = npt.NDArray[np.float32]
Vectors = npt.NDArray[np.floating[Any]]


def best_rank(users: Vectors, items: Vectors, k: int) -> tuple[Floats, Floats]:
    """(U', V') k wide with U' V'ᵀ the best rank-k approximation of `users` @ `items`ᵀ, as
    float32; unchanged (bar the dtype) when they are at most k wide or k is 0. Columns past
    the scores' rank are 0."""
    width = users.shape[1]
    if k < 1 or width <= k:
        return users.astype(np.float32, copy=False), items.astype(np.float32, copy=False)
    to_users, to_items = _transforms(_root(_gram(users)), _root(_gram(items)), k)
    return _times(users, to_users), _times(items, to_items)


def _gram(vectors: Vectors) -> npt.NDArray[np.float64]:
    width = vectors.shape[1]
    gram = np.zeros((width, width), dtype=np.float64)
    for start in range(0, len(vectors), _BLOCK):
        block = vectors[start : start + _BLOCK].astype(np.float64)
        gram += block.T @ block
    return gram


def _root(gram: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], ...]:
    """(R, R⁺) with Rᵀ R = `gram` (R = Λ^½ Wᵀ over the kept eigenvalues) and R⁺ = W Λ^-½,
    so that X R⁺ has orthonormal columns and X = (X R⁺) R."""
    values, vectors = np.linalg.eigh(gram)
    keep = values > RELATIVE_TOLERANCE * max(float(values.max()), 0.0)
    values, vectors = values[keep], vectors[:, keep]
    return np.sqrt(values)[:, None] * vectors.T, vectors / np.sqrt(values)


def _transforms(
    user_root: tuple[npt.NDArray[np.float64], ...],
    item_root: tuple[npt.NDArray[np.float64], ...],
    k: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    (ru, ru_inverse), (rv, rv_inverse) = user_root, item_root
    left, singular, right_t = np.linalg.svd(ru @ rv.T, full_matrices=False)
    kept = min(k, len(singular))
    half = np.sqrt(singular[:kept])
    to_users = np.zeros((ru_inverse.shape[0], k))
    to_items = np.zeros((rv_inverse.shape[0], k))
    # The singular values split evenly (S^½ on each side) keeps users' and items' norms alike.
    to_users[:, :kept] = ru_inverse @ (left[:, :kept] * half)
    to_items[:, :kept] = rv_inverse @ (right_t[:kept].T * half)
    return to_users, to_items


def _times(vectors: Vectors, transform: npt.NDArray[np.float64]) -> Floats:
    out = np.empty((len(vectors), transform.shape[1]), dtype=np.float32)
    for start in range(0, len(vectors), _BLOCK):
        block = vectors[start : start + _BLOCK].astype(np.float64)
        out[start : start + _BLOCK] = block @ transform
    return out
