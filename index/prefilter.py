"""An int8 copy of the vector matrix that finds a small candidate set holding the exact top-k.

Why: a float32 matrix-vector product is memory bound (1.5 GB per query at 10^6 x 384); an int8
copy is a quarter of the bytes, and ``torch._int_mm`` multiplies int8 by int8 with int32
accumulation (exact integers) on both cores. Its scores are estimates with a *proven* error
bound, so every row that could be in the float32 top-k (or above a score threshold) is kept as
a candidate and the caller re-ranks the candidates in float32: the answer is the brute-force
float32 answer (ties aside), only faster.

Quantization (per row): ``x ≈ x̂ = s·X`` with ``s = max|x| / 127`` and ``X`` int8 in [-127, 127];
the query likewise ``q ≈ q̂ = t·Q``. Then exactly

    x·q − x̂·q̂ = e·q + x̂·f        (e = x − x̂, f = q − q̂)

so ``|x·q − est| ≤ W = ‖e‖‖q‖ + ‖x̂‖‖f‖`` by Cauchy–Schwarz, where ``est = s·t·(X·Q)`` and
``X·Q`` is an exact int32 (|X·Q| ≤ d·127² < 2^24, so also exact as float32). ``‖e‖`` is kept per
row (measured when the copy is built, rounded up): a few rows dominated by one large
component have a coarse scale and a larger error, and must not widen everyone's bound. ``max‖x̂‖``
is global, ``‖f‖`` per query. Typical values for unit vectors of dimension 384: W ≈ 0.01–0.015
(scores of random vectors spread ±0.05 per sigma). Two small slacks are added: float32 rounding
of ``est`` and ``est ± W`` (a few ulps), and the error γ = γ_d·‖x‖‖q‖ (γ_d = d·2^-24 / (1 − d·2^-24))
of any float32 dot product, i.e. of the brute-force scores the answer must match.

Candidate rule: with ``L`` = the k-th largest ``est − W``, at least k rows score ≥ L, so the
float32 k-th score is ≥ L − γ; a row can reach it only if ``est + W ≥ L − 2γ``, and can reach a
threshold ``τ`` only if ``est + W ≥ τ − γ``. Every other row is dropped; the rest are re-ranked.

Memory: N·(d + 8) bytes (374 MiB at 10^6 x 384, next to 1.43 GiB of float32). Codes are made
once per block (asset) and kept as views into the concatenated copy, so a rebuild after one asset
changes quantizes only that asset and then copies the int8 rows (~2x less than the float32 copy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

if TYPE_CHECKING:
    import torch

_CHUNK = 16384  # rows quantized at a time (bounds the float64 temporaries to ~50 MB at d=384)


def _torch():
    try:
        import torch
    except Exception:  # pragma: no cover - torch is a dependency, but stay correct without it
        return None
    return torch


_SELF_CHECK: Optional[bool] = None


def available() -> bool:
    """torch is importable and its int8 matmul is exact here (checked once, with extreme values
    that would saturate a u8·s8 → int16 kernel)."""
    global _SELF_CHECK
    if _SELF_CHECK is None:
        torch = _torch()
        ok = torch is not None and hasattr(torch, "_int_mm")
        if ok:
            try:
                g = torch.Generator().manual_seed(0)
                a = torch.randint(-127, 128, (64, 384), dtype=torch.int8, generator=g)
                a[:8] = 127
                a[8:16] = -127
                a[16:24, ::2] = -127
                a[16:24, 1::2] = 127
                b = torch.randint(-127, 128, (384, 1), dtype=torch.int8, generator=g)
                b[::2] = -127
                b[1::2] = 127
                for bb in (b, -b, torch.full_like(b, 127), torch.full_like(b, -127)):
                    bb = bb.contiguous()
                    ok = ok and torch.equal(torch._int_mm(a, bb), a.to(torch.int64).mm(bb.to(torch.int64)).to(torch.int32))
                    ok = ok and torch.equal(torch._int_mm(a[3:50], bb), a[3:50].to(torch.int64).mm(bb.to(torch.int64)).to(torch.int32))
            except Exception:
                ok = False
        _SELF_CHECK = bool(ok)
    return _SELF_CHECK


@dataclass
class Quantized:
    """int8 codes of a block of rows with what the error bound needs (see the module docstring)."""

    codes: "torch.Tensor"  # (n, d) int8
    scale: "torch.Tensor"  # (n,) float32, x ≈ scale·codes
    err: "torch.Tensor"  # (n,) float32, >= ‖x − scale·codes‖
    err_max: float
    norm_max: float  # >= max ‖x‖


def quantize(matrix: np.ndarray) -> Quantized:
    """Per-row int8 codes of an (n, d) float32 matrix, with rounded-up error norms."""
    import torch

    n, d = matrix.shape
    codes_all = torch.empty((n, d), dtype=torch.int8)
    scale_all = torch.empty(n, dtype=torch.float32)
    err_all = torch.empty(n, dtype=torch.float32)
    err = norm = 0.0
    u = 2.0 ** -24
    # Norms are taken in float32 (float64 is ~10x slower here) and rounded up: the computed
    # residual differs from x − s·X by <= 2u·max|x| per element (one rounded product, one
    # rounded difference), a float32 norm is within (d+2)u relative, and the final
    # multiply-add below adds a few ulps; the factors below cover all three with room.
    rel = 1 + 4 * (d + 4) * u
    ab = 4 * u * math.sqrt(d)
    for lo in range(0, n, _CHUNK):
        hi = min(n, lo + _CHUNK)
        x = torch.from_numpy(np.ascontiguousarray(matrix[lo:hi], dtype=np.float32))
        amax = x.abs().amax(dim=1)
        s = amax / 127.0
        s = torch.where(s > 0, s, torch.ones_like(s))
        codes = torch.round(x / s[:, None]).clamp_(-127, 127).to(torch.int8)
        codes_all[lo:hi] = codes
        scale_all[lo:hi] = s
        e = torch.linalg.vector_norm(x - codes.to(torch.float32) * s[:, None], dim=1)
        e = e * rel + amax * ab + 1e-20
        err_all[lo:hi] = e
        err = max(err, float(e.max()))
        norm = max(norm, float(torch.linalg.vector_norm(x, dim=1).max()) * rel + 1e-20)
    return Quantized(codes_all, scale_all, err_all, err, norm)


class Int8Prefilter:
    """Read-only int8 copy of an (N, d) float32 matrix, made of quantized row blocks in order;
    see the module docstring."""

    def __init__(self, parts: Sequence[Quantized], dim: int) -> None:
        import torch

        parts = [p for p in parts if len(p.codes)]
        self.dim = dim
        self.codes = torch.cat([p.codes for p in parts]) if parts else torch.zeros((0, dim), dtype=torch.int8)
        self.scale = torch.cat([p.scale for p in parts]) if parts else torch.zeros(0)
        self.err = torch.cat([p.err for p in parts]) if parts else torch.zeros(0)
        self.n = len(self.codes)
        self.err_max = max((p.err_max for p in parts), default=0.0)
        self.norm_max = max((p.norm_max for p in parts), default=0.0)
        self.hat_max = self.norm_max + self.err_max  # ‖x̂‖ <= ‖x‖ + ‖x − x̂‖
        #: False if the matrix has non-finite values (then the caller stays on the exact path).
        self.ok = all(math.isfinite(v) for v in (self.err_max, self.norm_max))

    def view(self, lo: int, hi: int, part: Quantized) -> Quantized:
        """``part`` (rows lo:hi of this copy) as views into this copy's storage."""
        return Quantized(self.codes[lo:hi], self.scale[lo:hi], self.err[lo:hi], part.err_max, part.norm_max)

    @classmethod
    def from_matrix(cls, matrix: np.ndarray) -> "Int8Prefilter":
        return cls([quantize(matrix)], int(matrix.shape[1]))

    @property
    def nbytes(self) -> int:
        return self.codes.numel() + 4 * self.scale.numel() + 4 * self.err.numel()

    def candidates(
        self,
        query: np.ndarray,
        k: Optional[int],
        threshold: Optional[float],
        ranges: Optional[Sequence[tuple[int, int]]] = None,
        max_fraction: float = 0.125,
    ) -> Optional[np.ndarray]:
        """Sorted row indices that hold every row of the float32 top-``k`` (with score >=
        ``threshold``) among all rows, or among the row ``ranges`` [lo, hi) (disjoint).
        None when the set would be more than ``max_fraction`` of the selected rows (or the
        query is degenerate): then an exact scan is as cheap, and the caller does one."""
        import torch

        if not self.ok:
            return None
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if q.shape[0] != self.dim or not np.isfinite(q).all():
            return None
        qd = q.astype(np.float64)
        qmax = float(np.abs(qd).max()) if len(qd) else 0.0
        if qmax == 0.0:
            return None
        t = np.float32(qmax / 127.0)
        Q = np.clip(np.round(q / t), -127, 127).astype(np.int8)
        q_norm = float(np.linalg.norm(qd))
        f_norm = float(np.linalg.norm(qd - Q.astype(np.float64) * float(t)))
        hat_q = self.hat_max * math.sqrt(float(np.sum(Q.astype(np.float64) ** 2))) * float(t)
        u = 2.0 ** -24
        gamma = self.dim * u / (1 - self.dim * u) * self.norm_max * q_norm
        # W = r + c: r per row (‖e‖·‖q‖), c for every row (‖x̂‖‖f‖ and float32 rounding)
        c = self.hat_max * f_norm * (1 + 1e-6) + 16 * u * (hat_q + self.err_max * q_norm + 1.0)
        a = q_norm * (1 + 1e-6)  # r = err·a rounds to >= ‖e‖·‖q‖

        Qt = torch.from_numpy(Q).reshape(-1, 1)
        tt = float(t)
        if ranges is None:
            sel = self.n
            est = torch._int_mm(self.codes, Qt).reshape(-1).to(torch.float32).mul_(self.scale).mul_(tt)
            r = self.err * a
            offsets = None
        else:
            ranges = sorted((int(lo), int(hi)) for lo, hi in ranges if hi > lo)
            sel = sum(hi - lo for lo, hi in ranges)
            if sel == 0:
                return np.zeros(0, np.int64)
            if sel * 2 >= self.n:  # one scan of everything, the other rows masked out
                est = torch._int_mm(self.codes, Qt).reshape(-1).to(torch.float32).mul_(self.scale).mul_(tt)
                prev = 0
                for lo, hi in ranges:
                    est[prev:lo] = -math.inf
                    prev = hi
                est[prev:] = -math.inf
                r = self.err * a
                offsets = None
            else:
                est = torch.cat([
                    torch._int_mm(self.codes[lo:hi], Qt).reshape(-1).to(torch.float32).mul_(self.scale[lo:hi])
                    for lo, hi in ranges
                ]).mul_(tt)
                r = torch.cat([self.err[lo:hi] for lo, hi in ranges]).mul_(a)
                offsets = ranges
        cut = -math.inf  # keep rows with est + r >= cut
        if k is not None:
            if k <= 0:
                return np.zeros(0, np.int64)
            if k < sel:
                kth = float(torch.topk(est - r, k, sorted=False).values.min())  # L = kth − c
                cut = kth - 2 * c - 2 * gamma
        if threshold is not None:
            cut = max(cut, float(threshold) - c - gamma)
        if cut == -math.inf:
            return None
        pos = torch.nonzero(est.add_(r) >= cut).reshape(-1).numpy()
        if len(pos) > max(64, int(max_fraction * sel)):
            return None
        if offsets is None:
            return pos.astype(np.int64, copy=False)
        # positions in the concatenation of the ranges -> rows
        los = np.array([lo for lo, _ in offsets], np.int64)
        sizes = np.array([hi - lo for lo, hi in offsets], np.int64)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        which = np.searchsorted(starts, pos, side="right") - 1
        return (los[which] + (pos - starts[which])).astype(np.int64)
