"""Sparse weight tensors as TFLite stores them (``SparsityParameters``), decoded to their logical dense values.

The converter (``tf.lite.Optimize.EXPERIMENTAL_SPARSITY``) stores a pruned weight tensor as its non-zero values plus
a TACO-style index: a traversal order over the dimensions (and over block dimensions, for block sparsity), one
``DimensionMetadata`` per traversed dimension, each DENSE (just a size) or SPARSE_CSR (``array_segments`` and
``array_indices``), and a block map saying which original dimension each block dimension splits. The interpreter
expands it once, with a DENSIFY operator (float weights) or inside the kernel (sparse int8 FULLY_CONNECTED). A
reader that ignores the index sees only the stored values: fewer parameters than the layer has and no zeros.

:func:`densify` follows LiteRT's ``FormatConverter`` (tensorflow/lite/kernels/internal/utils/sparsity_format_converter)
level by level, vectorised, and checks every index against the shape, so a damaged index raises ``ValueError``
instead of reading out of bounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

DENSE, SPARSE_CSR = 0, 1


@dataclass(frozen=True, eq=False)
class Dimension:
    """One traversed dimension: DENSE of ``dense_size``, or SPARSE_CSR with its segments and indices."""

    sparse: bool
    dense_size: int
    segments: np.ndarray | None = None
    indices: np.ndarray | None = None

    @property
    def index_bytes(self) -> int:
        return sum(int(a.nbytes) for a in (self.segments, self.indices) if a is not None)


@dataclass(frozen=True, eq=False)
class SparseFormat:
    """How a sparse tensor is stored: the values it keeps and the index that places them."""

    traversal_order: tuple[int, ...]
    block_map: tuple[int, ...]
    dims: tuple[Dimension, ...]
    values: np.ndarray  # the stored values, in traversal order

    @property
    def block_size(self) -> tuple[int, ...]:
        """The size of each block dimension, in the order of ``block_map``."""
        rank = len(self.traversal_order) - len(self.block_map)
        level = {axis: i for i, axis in enumerate(self.traversal_order)}
        return tuple(self.dims[level[rank + b]].dense_size for b in range(len(self.block_map)))

    @property
    def stored_bytes(self) -> int:
        """What the file holds for this tensor: the kept values plus the CSR segment and index arrays."""
        return int(self.values.nbytes) + sum(d.index_bytes for d in self.dims)

    def describe(self) -> str:
        """``CSR``, or ``CSR, 1x16 blocks`` when the index addresses blocks."""
        if not self.block_map:
            return "CSR"
        rank = len(self.traversal_order) - len(self.block_map)
        block = [1] * rank
        for axis, size in zip(self.block_map, self.block_size, strict=True):
            block[axis] = size
        return f"CSR, {'x'.join(str(b) for b in block)} blocks"


# SparseIndexVector union: the index arrays keep the width the converter chose, which is what the file stores.
_INDEX_TYPES = {1: np.int32, 2: np.uint16, 3: np.uint8}


def _vector(value: Any, kind: Any) -> np.ndarray | None:
    """An ``Int32Vector`` / ``Uint16Vector`` / ``Uint8Vector`` union member as a numpy array of its own width."""
    if value is None:
        return None
    values = getattr(value, "values", None)
    return np.asarray(values if values is not None else [], dtype=_INDEX_TYPES.get(int(kind or 0), np.int32))


def read_format(sparsity: Any, values: np.ndarray) -> SparseFormat:
    """The ``SparsityParametersT`` of a tensor (from the generated schema) with its stored values."""
    dims = []
    for meta in sparsity.dimMetadata or []:
        if int(meta.format or 0) == SPARSE_CSR:
            segments = _vector(meta.arraySegments, meta.arraySegmentsType)
            dims.append(Dimension(True, 0, segments, _vector(meta.arrayIndices, meta.arrayIndicesType)))
        else:
            dims.append(Dimension(False, int(meta.denseSize or 0)))
    order = tuple(int(i) for i in (sparsity.traversalOrder if sparsity.traversalOrder is not None else ()))
    block_map = tuple(int(i) for i in (sparsity.blockMap if sparsity.blockMap is not None else ()))
    return SparseFormat(order, block_map, tuple(dims), values.reshape(-1))


def densify(fmt: SparseFormat, shape: tuple[int, ...]) -> np.ndarray:
    """The logical dense tensor of ``shape``; raises ``ValueError`` when the index does not fit the shape."""
    rank, levels = len(shape), len(fmt.traversal_order)
    if levels != len(fmt.dims) or levels < rank or len(fmt.block_map) != levels - rank:
        raise ValueError("sparse tensor: traversal order, dimension metadata and block map disagree")
    if (
        sorted(fmt.traversal_order) != list(range(levels))
        or sorted(fmt.traversal_order[:rank]) != list(range(rank))
        or any(not 0 <= a < rank for a in fmt.block_map)
    ):
        raise ValueError("sparse tensor: traversal order or block map is not a permutation of the dimensions")
    block = dict(zip(fmt.block_map, fmt.block_size, strict=True))
    if any(size <= 0 or shape[axis] % size for axis, size in block.items()):
        raise ValueError("sparse tensor: block size does not divide the shape")
    # The size of each level: a tensor dimension (divided by its block size), or a block dimension.
    extent = [shape[a] // block.get(a, 1) if a < rank else fmt.block_size[a - rank] for a in fmt.traversal_order]
    total = int(np.prod(shape, dtype=np.int64)) if shape else 1
    positions = np.zeros(1, dtype=np.int64)  # where each partial path sits in its level (prev_idx in LiteRT)
    coords: list[np.ndarray] = []
    for level, dim in enumerate(fmt.dims):
        if not dim.sparse:
            size = extent[level]
            if dim.dense_size != size:
                raise ValueError(f"sparse tensor: dense dimension {level} has size {dim.dense_size}, not {size}")
            if positions.size * size > total:
                raise ValueError("sparse tensor: more positions than the tensor has elements")
            coords = [np.repeat(c, size) for c in coords]
            coords.append(np.tile(np.arange(size, dtype=np.int64), positions.size))
            positions = (positions[:, None] * size + np.arange(size, dtype=np.int64)).reshape(-1)
            continue
        if dim.segments is None or dim.indices is None or dim.segments.size < 1:
            raise ValueError(f"sparse tensor: dimension {level} is SPARSE_CSR without segments and indices")
        segments, indices = dim.segments.astype(np.int64), dim.indices.astype(np.int64)
        if positions.size and int(positions.max()) + 1 >= segments.size:
            raise ValueError(f"sparse tensor: dimension {level} has too few segments")
        starts, ends = segments[positions], segments[positions + 1]
        counts = ends - starts
        if (counts < 0).any() or (starts < 0).any() or (ends > indices.size).any() or counts.sum() > total:
            raise ValueError(f"sparse tensor: dimension {level} has segments outside its indices")
        run = np.repeat(ends - counts.cumsum(), counts) + np.arange(int(counts.sum()), dtype=np.int64)
        coords = [np.repeat(c, counts) for c in coords]
        chosen = indices[run]
        if ((chosen < 0) | (chosen >= extent[level])).any():
            raise ValueError(f"sparse tensor: dimension {level} has an index outside 0..{extent[level] - 1}")
        coords.append(chosen)
        positions = run
    if positions.size != fmt.values.size:
        raise ValueError(f"sparse tensor: the index places {positions.size} values, the buffer holds {fmt.values.size}")
    original = [np.zeros(positions.size, dtype=np.int64) for _ in range(rank)]
    for level, axis in enumerate(fmt.traversal_order[:rank]):
        original[axis] = coords[level]
    for level in range(rank, levels):
        block_level = fmt.traversal_order[level] - rank
        axis = fmt.block_map[block_level]
        original[axis] = original[axis] * fmt.block_size[block_level] + coords[level]
    dense = np.zeros(total, dtype=fmt.values.dtype)
    if positions.size:
        dense[np.ravel_multi_index(tuple(original), shape)] = fmt.values
    return dense.reshape(shape)
