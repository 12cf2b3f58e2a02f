"""Numba open-addressing hash table from integer key vectors to dense indices 0, 1, 2, ...

Used to find the vertices of the bilateral solver's grid and of the dense CRF's permutohedral lattice.
Keys are compared element by element, so two different keys never share an index (no lossy "base-255"
packing as in the TokenCut-family code); the hash only picks the first probe slot.

State is three values the caller carries: ``slots`` (int32, power-of-two size, -1 = empty, else the index
of the key stored there), ``keys`` (int32, (capacity, d); ``capacity == slots.size // 2`` keeps the load
factor <= 1/2) and ``count``. Call :func:`grow` when ``count == keys.shape[0]`` before inserting.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from maskrefine._jit import njit

__all__ = ["new_table", "grow", "find", "find_or_insert"]


@njit(cache=True, nogil=True)
def new_table(capacity: int, d: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    """Empty table for at least ``capacity`` keys of length ``d``."""
    size = 16
    while size < 2 * capacity:
        size *= 2
    slots = np.full(size, -1, np.int32)
    keys = np.empty((size // 2, d), np.int32)
    return slots, keys


@njit(cache=True, nogil=True, inline="always")
def _first_slot(key: npt.NDArray[np.int32], d: int, mask: np.int64) -> np.int64:
    h = np.int64(0)
    for i in range(d):
        h = (h + np.int64(key[i])) * np.int64(2654435761)  # wraps modulo 2**64: fine for a hash
    h ^= h >> np.int64(29)
    return h & mask


@njit(cache=True, nogil=True)
def find(slots: npt.NDArray[np.int32], keys: npt.NDArray[np.int32], key: npt.NDArray[np.int32]) -> int:
    """Index of ``key`` or -1 when absent."""
    d = keys.shape[1]
    mask = np.int64(slots.shape[0] - 1)
    s = _first_slot(key, d, mask)
    while True:
        idx = slots[s]
        if idx < 0:
            return -1
        same = True
        for i in range(d):
            if keys[idx, i] != key[i]:
                same = False
                break
        if same:
            return idx
        s = (s + 1) & mask


@njit(cache=True, nogil=True)
def find_or_insert(
    slots: npt.NDArray[np.int32], keys: npt.NDArray[np.int32], count: int, key: npt.NDArray[np.int32]
) -> tuple[int, int]:
    """Return ``(index, new_count)``: the index of ``key``, inserting it as ``count`` when absent.

    Requires ``count < keys.shape[0]`` (call :func:`grow` first).
    """
    d = keys.shape[1]
    mask = np.int64(slots.shape[0] - 1)
    s = _first_slot(key, d, mask)
    while True:
        idx = slots[s]
        if idx < 0:
            slots[s] = count
            for i in range(d):
                keys[count, i] = key[i]
            return count, count + 1
        same = True
        for i in range(d):
            if keys[idx, i] != key[i]:
                same = False
                break
        if same:
            return idx, count
        s = (s + 1) & mask


@njit(cache=True, nogil=True)
def grow(
    slots: npt.NDArray[np.int32], keys: npt.NDArray[np.int32], count: int
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    """Return a table with twice the capacity holding the same ``count`` keys at the same indices."""
    d = keys.shape[1]
    size = slots.shape[0] * 2
    new_slots = np.full(size, -1, np.int32)
    new_keys = np.empty((size // 2, d), np.int32)
    new_keys[:count] = keys[:count]
    mask = np.int64(size - 1)
    for idx in range(count):
        s = _first_slot(new_keys[idx], d, mask)
        while new_slots[s] >= 0:
            s = (s + 1) & mask
        new_slots[s] = idx
    return new_slots, new_keys
