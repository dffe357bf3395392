"""Ids as integer codes that stay the same from one part of the data to the next (`Codes`):
what lets the readout read the exports a day at a time and keep numbers, never rows.

A part's distinct values are found by one arrow hash pass; each is then looked up among the
values seen before through a sorted index of 64-bit fingerprints (FNV-1a), and every match
is confirmed on the strings themselves, so codes are exact. The work per part is in
proportion to the part, not to everything seen so far.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

_EPOCH = date(1970, 1, 1)
_Ints = npt.NDArray[np.int64]
_Hashes = npt.NDArray[np.uint64]
_FNV_BASIS, _FNV_PRIME = np.uint64(0xCBF29CE484222325), np.uint64(0x100000001B3)
_BLOCK = 1 << 20  # strings hashed together (bounds the gathered bytes' index)


class Codes:
    """A dictionary that grows: each distinct value gets the next integer code, for good."""

    def __init__(self) -> None:
        self._known: list[pa.Array] = []  # the values of codes 0.., one chunk per part
        self._starts: list[int] = []  # the code of each chunk's first value
        self._index = _Fingerprints()
        self.size = 0

    def encode(self, *columns: pa.ChunkedArray) -> list[_Ints]:
        """Each column's rows as codes (-1 for a null), coding values not seen before.
        Dictionary columns are coded by their dictionaries, their rows never decoded."""
        pieces: list[tuple[pa.ChunkedArray, list[tuple[pa.Array, list[int]]] | None]] = []
        words: list[pa.Array] = []
        for column in columns:
            if pa.types.is_dictionary(column.type):
                groups = _dictionaries(column)
                pieces.append((column, groups))
                words += [values for values, _ in groups]
            else:
                pieces.append((column, None))
                words += column.chunks
        if not words:
            return [np.zeros(len(column), np.int64) for column in columns]
        # One hash pass: the part's distinct values, and each word's index among them.
        encoded = pc.dictionary_encode(pa.concat_arrays(words))
        word_codes = np.append(self._code(encoded.dictionary), -1)[numpy_ints(encoded.indices, -1)]
        found: list[_Ints] = []
        at = 0
        for column, dictionaries in pieces:
            size = len(column) if dictionaries is None else sum(len(d) for d, _ in dictionaries)
            here, at = word_codes[at : at + size], at + size
            found.append(here if dictionaries is None else _indexed(column, dictionaries, here))
        return found

    def _code(self, distinct: pa.Array) -> _Ints:
        hashes = fingerprints(distinct)
        codes = self._index.find(hashes)
        matched = np.flatnonzero(codes >= 0)
        wrong = matched[~self._same(distinct, matched, codes[matched])]
        if len(wrong):  # a fingerprint shared by two values (about never): search exactly
            codes[wrong] = -1
            suspects = distinct.take(pa.array(wrong))
            position = numpy_ints(
                pc.index_in(pa.chunked_array(self._known), value_set=suspects), -1
            )
            known = np.flatnonzero(position >= 0)
            codes[wrong[position[known]]] = known
        fresh = np.flatnonzero(codes < 0)
        if len(fresh):
            codes[fresh] = self.size + np.arange(len(fresh))
            self._known.append(distinct.take(pa.array(fresh)))
            self._starts.append(self.size)
            self._index.add(hashes[fresh], codes[fresh])
            self.size += len(fresh)
        return codes

    def _same(self, distinct: pa.Array, rows: _Ints, codes: _Ints) -> npt.NDArray[np.bool_]:
        """Whether each of `rows` of `distinct` is the known value of its code."""
        same = np.ones(len(rows), bool)
        chunk = np.searchsorted(self._starts, codes, side="right") - 1
        for at in np.unique(chunk).tolist():
            mine = np.flatnonzero(chunk == at)
            known = self._known[at].take(pa.array(codes[mine] - self._starts[at]))
            equal = pc.equal(distinct.take(pa.array(rows[mine])), known)
            same[mine] = np.asarray(equal.to_numpy(zero_copy_only=False), bool)
        return same


class _Fingerprints:
    """Sorted runs of (fingerprint, code), merged pairwise as they grow (a binary counter:
    a few runs, each value moved about log(parts) times)."""

    def __init__(self) -> None:
        self._runs: list[tuple[_Hashes, npt.NDArray[np.int32]]] = []

    def find(self, hashes: _Hashes) -> _Ints:
        """The code of a value with each fingerprint, -1 when there is none."""
        order = np.argsort(hashes)
        wanted, found = hashes[order], np.full(len(hashes), -1, np.int64)
        for keys, codes in self._runs:
            position = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
            hit = (keys[position] == wanted) & (found < 0)
            found[hit] = codes[position[hit]]
        codes_found = np.empty_like(found)
        codes_found[order] = found
        return codes_found

    def add(self, hashes: _Hashes, codes: _Ints) -> None:
        order = np.argsort(hashes)
        self._runs.append((hashes[order], codes[order].astype(np.int32)))
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= 2 * len(self._runs[-1][0]):
            (a, a_codes), (b, b_codes) = self._runs[-2], self._runs[-1]
            places = np.searchsorted(a, b) + np.arange(len(b))  # b's places in the merge
            from_a = np.ones(len(a) + len(b), bool)
            from_a[places] = False
            keys, merged = np.empty(len(from_a), np.uint64), np.empty(len(from_a), np.int32)
            keys[places], merged[places] = b, b_codes
            keys[from_a], merged[from_a] = a, a_codes
            self._runs[-2:] = [(keys, merged)]


def fingerprints(values: pa.Array) -> _Hashes:
    """FNV-1a (64-bit) of each string's bytes, strings of one length hashed together."""
    if not len(values):
        return np.zeros(0, np.uint64)
    large = pa.types.is_large_string(values.type) or pa.types.is_large_binary(values.type)
    buffers = values.buffers()
    offsets = np.frombuffer(buffers[1], np.int64 if large else np.int32)
    offsets = offsets[values.offset : values.offset + len(values) + 1].astype(np.int64)
    data = np.frombuffer(buffers[2], np.uint8) if buffers[2] is not None else np.zeros(1, np.uint8)
    length = np.diff(offsets)
    hashes = np.full(len(values), _FNV_BASIS, np.uint64)
    by_length = np.argsort(length, kind="stable")
    edges = np.flatnonzero(np.r_[True, np.diff(length[by_length]) != 0, True])
    for lo, hi in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
        size = int(length[by_length[lo]])
        for block in range(lo, hi, _BLOCK):
            rows = by_length[block : min(hi, block + _BLOCK)]
            starts, hashed = offsets[rows], hashes[rows]
            for position in range(size):
                hashed = (hashed ^ data[starts + position]) * _FNV_PRIME
            hashes[rows] = hashed
    return hashes


def _indexed(
    column: pa.ChunkedArray, groups: list[tuple[pa.Array, list[int]]], found: _Ints
) -> _Ints:
    """Each row's code, from `found`: the codes of the groups' dictionaries, concatenated."""
    codes: list[_Ints] = [np.zeros(0, np.int64)] * column.num_chunks
    start = 0
    for words, positions in groups:
        mapping = np.append(found[start : start + len(words)], -1)  # [-1]: a null index
        start += len(words)
        for position in positions:
            codes[position] = mapping[numpy_ints(column.chunk(position).indices, -1)]
    return np.concatenate(codes) if codes else np.zeros(0, np.int64)


def _dictionaries(column: pa.ChunkedArray) -> list[tuple[pa.Array, list[int]]]:
    """The distinct dictionaries of a dictionary column, each with its chunks' positions. The
    batches read from one parquet row group share its dictionary: looking each up once is
    what keeps the readout linear (42 batches held 3x the rows in dictionary entries)."""
    groups: dict[tuple[int, ...], tuple[pa.Array, list[int]]] = {}
    for position, chunk in enumerate(column.chunks):
        words = chunk.dictionary
        key = (words.offset, len(words), *(b.address if b else 0 for b in words.buffers()))
        groups.setdefault(key, (words, []))[1].append(position)
    return list(groups.values())


def lookup(column: pa.ChunkedArray, distinct: pa.Array) -> _Ints:
    """Each row's index in `distinct` (a few values), -1 when absent or null."""
    return numpy_ints(pc.index_in(column, value_set=distinct), -1)


def numpy_ints(column: pa.ChunkedArray | pa.Array, fill: int | bool | None = None) -> _Ints:
    if fill is not None:
        column = pc.fill_null(column, fill)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return np.asarray(column.to_numpy(zero_copy_only=False)).astype(np.int64, copy=False)


def day_index(moments: pa.ChunkedArray, start: date) -> _Ints:
    """Each timestamp's UTC day, counted from `start` (0)."""
    days = numpy_ints(pc.cast(pc.cast(moments, pa.date32()), pa.int32()))
    return days - (start - _EPOCH).days
