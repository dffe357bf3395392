"""Sets of integer keys `owner << SHIFT | detail` (a session and a page number, a session and
a video code) added a day at a time, with the first day each was added on."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_Ints = npt.NDArray[np.int64]
_Flags = npt.NDArray[np.bool_]
#: An owner code (a session) below 2**31, a detail (a page number, a video code) below 2**32.
SHIFT = 32
_DETAIL = (1 << SHIFT) - 1


class KeySet:
    """Distinct keys, with the first day each was added on and a flag any addition may raise
    (`track`). Kept in sorted chunks, one per addition. Owners are coded in the order they are
    first seen, so the keys of an owner above every owner added so far cannot be here: only
    the others are looked up."""

    def __init__(self, *, track: bool = True) -> None:
        self.keys: list[_Ints] = []
        self.days: list[npt.NDArray[np.int16]] = []
        self.flags: list[_Flags] = []
        self._track = track
        self._bound = 0  # keys from here up are not in the set

    def add(self, keys: _Ints, day: int, flags: _Flags | None = None) -> None:
        """Add sorted, distinct `keys` seen on `day`, raising `flags` where given."""
        split = int(np.searchsorted(keys, self._bound))
        old, missing = keys[:split], np.ones(split, bool)
        for at, chunk in enumerate(self.keys):
            if not missing.any():
                break
            position = np.minimum(np.searchsorted(chunk, old), len(chunk) - 1)
            hit = chunk[position] == old
            if self._track:
                where = position[hit]
                self.days[at][where] = np.minimum(self.days[at][where], day)
                if flags is not None:
                    self.flags[at][where] |= flags[:split][hit]
            missing &= ~hit
        added = np.concatenate([old[missing], keys[split:]])
        if not len(added):
            return
        self.keys.append(added)
        if self._track:
            self.days.append(np.full(len(added), day, np.int16))
            raised = np.zeros(len(keys), bool) if flags is None else flags
            self.flags.append(np.concatenate([raised[:split][missing], raised[split:]]))
        self._bound = max(self._bound, ((int(added[-1]) >> SHIFT) + 1) << SHIFT)

    def contains(self, keys: _Ints) -> _Flags:
        order = np.argsort(keys, kind="stable")  # sorted needles: numpy's search resumes
        wanted, found = keys[order], np.zeros(len(keys), bool)
        for chunk in self.keys:
            position = np.minimum(np.searchsorted(chunk, wanted), len(chunk) - 1)
            found |= chunk[position] == wanted
        inside = np.empty_like(found)
        inside[order] = found
        return inside


def keyed(owner: _Ints, detail: _Ints) -> _Ints:
    return (owner << SHIFT) | (detail & _DETAIL)


def owner_of(keys: _Ints) -> _Ints:
    return keys >> SHIFT


def distinct(keys: _Ints) -> tuple[_Ints, _Ints]:
    """(sorted distinct keys, each key's index among them): a sort, not numpy's hash."""
    order = np.argsort(keys)
    ordered = keys[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]]
    inverse = np.empty(len(keys), np.int64)
    inverse[order] = np.cumsum(first) - 1
    return ordered[first], inverse
