"""Fit one speed curve to many pitch tracks: ``track value = own constant + common curve``.

A speed error moves every sounding partial by the same ratio at the same moment, while each
partial (or note) sits at its own pitch. So for track ``k`` observed at frames ``m`` (log
frequency ``y[k, m]``, in cents) the model is ``y[k, m] = a[k] + s[m] + noise`` with one free
constant per track and one common curve ``s``. Least squares with the track constants
eliminated gives, for the curve alone, the normal equations

    sum_k c_k (s[m] - mean_k(s))  +  lam1 (D1'D1 s)[m] + lam2 (D2'D2 s)[m]  =  sum_k c_k d[k, m]

where ``d[k, m] = y[k, m] - mean_k(y)`` is each track's deviation from its own mean, ``c_k`` its
weight (inverse noise variance) and the sums run over the tracks sounding at frame ``m``.
This is a *fit*: a frame's value is tied to every frame that shares a track with it, so errors
do not accumulate the way integrated frame-to-frame changes random-walk. The small first- and
second-difference penalties only matter where the data leave the curve undetermined (gaps,
and the constant offset of a note that shares no partial with its neighbours): they bridge
them smoothly instead of letting them jump.

Only per-frame sums and three numbers per track are kept, so long files fit in memory, and
the operator is applied in ``O(frames + tracks)`` with cumulative sums; the system is solved by
preconditioned conjugate gradients. Tracks are dealt into two independent halves
(:attr:`CurveFit.halves`): the two fitted curves share the true speed error but not the
measurement noise, so their difference measures the tracker's own noise floor.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator, cg

#: first-difference penalty, relative to the median per-frame data weight (bridges gaps)
LAMBDA1 = 0.0
#: second-difference penalty, same scale (keeps bridges smooth; ~3 % loss at 20 Hz flutter)
LAMBDA2 = 0.02
#: ridge pulling unmeasured stretches towards 0 (and fixing the overall constant)
RIDGE = 1e-4


class CurveFit:
    """Accumulates tracks for two independent halves, then :meth:`solve` for both curves."""

    halves = 2

    def __init__(self) -> None:
        self.size = 0
        self.s1 = np.zeros((self.halves, 1024))  # sum_k c_k d[k, m]
        self.w = np.zeros((self.halves, 1024))  # sum_k c_k
        self.starts: list[np.ndarray] = []
        self.ends: list[np.ndarray] = []
        self.weights: list[np.ndarray] = []
        self.half: list[np.ndarray] = []

    def _grow(self, n: int) -> None:
        if n > self.s1.shape[1]:
            cap = max(n, 2 * self.s1.shape[1])
            self.s1 = np.pad(self.s1, ((0, 0), (0, cap - self.s1.shape[1])))
            self.w = np.pad(self.w, ((0, 0), (0, cap - self.w.shape[1])))
        self.size = max(self.size, n)

    def add(
        self,
        track: np.ndarray,
        frame: np.ndarray,
        value: np.ndarray,
        weight: np.ndarray,
        half: np.ndarray,
    ) -> None:
        """Add finished tracks given as observations.

        Parameters
        ----------
        track : np.ndarray [shape=(n,), dtype=int]
            Track index of each observation, ``0..k-1``; a track's observations lie on
            consecutive frames.
        frame : np.ndarray [shape=(n,), dtype=int]
            Absolute frame of each observation.
        value : np.ndarray [shape=(n,)]
            Observed log frequency (cents).
        weight : np.ndarray [shape=(k,)]
            Weight of each track (inverse noise variance, 1/cents^2).
        half : np.ndarray [shape=(k,), dtype=int]
            Which half (0 or 1) each track belongs to.
        """
        if track.size == 0:
            return
        k = weight.size
        count = np.bincount(track, minlength=k).astype(float)
        mean = np.bincount(track, weights=value, minlength=k) / np.maximum(count, 1.0)
        start = np.full(k, np.iinfo(np.int64).max)
        np.minimum.at(start, track, frame)
        end = np.zeros(k, dtype=np.int64)
        np.maximum.at(end, track, frame)
        present = count > 0
        self._grow(int(frame.max()) + 1)
        c = weight[track]
        for h in range(self.halves):
            sel = half[track] == h
            self.s1[h] += np.bincount(
                frame[sel],
                weights=c[sel] * (value[sel] - mean[track][sel]),
                minlength=self.s1.shape[1],
            )
            self.w[h] += np.bincount(frame[sel], weights=c[sel], minlength=self.w.shape[1])
        self.starts.append(start[present])
        self.ends.append(end[present])
        self.weights.append(weight[present])
        self.half.append(half[present])

    def solve(self, frames: int) -> np.ndarray:
        """Fitted curves of the two halves, shape ``(2, frames)`` (cents, each of mean 0)."""
        self._grow(frames)
        out = np.zeros((self.halves, frames))
        if not self.starts or frames < 2:
            return out
        start = np.concatenate(self.starts)
        end = np.minimum(np.concatenate(self.ends), frames - 1)
        weight = np.concatenate(self.weights)
        half = np.concatenate(self.half)
        for h in range(self.halves):
            sel = (half == h) & (start < frames)
            out[h] = _solve(
                self.s1[h, :frames], self.w[h, :frames], start[sel], end[sel], weight[sel]
            )
        return out


def _solve(
    rhs: np.ndarray, w: np.ndarray, start: np.ndarray, end: np.ndarray, c: np.ndarray
) -> np.ndarray:
    n = rhs.size
    if not np.any(w > 0):
        return np.zeros(n)
    scale = float(np.median(w[w > 0]))
    lam1, lam2, ridge = LAMBDA1 * scale, LAMBDA2 * scale, RIDGE * scale
    length = (end - start + 1).astype(float)

    def apply(s: np.ndarray) -> np.ndarray:
        s = np.asarray(s, dtype=np.float64).ravel()
        cs = np.concatenate([[0.0], np.cumsum(s)])
        track_mean = (cs[end + 1] - cs[start]) / length
        spread = np.zeros(n + 1)
        np.add.at(spread, start, c * track_mean)
        np.add.at(spread, end + 1, -c * track_mean)
        out = (w + ridge) * s - np.cumsum(spread)[:n]
        d1 = np.diff(s)
        out[:-1] -= lam1 * d1
        out[1:] += lam1 * d1
        d2 = np.diff(s, 2)
        out[:-2] += lam2 * d2
        out[1:-1] -= 2.0 * lam2 * d2
        out[2:] += lam2 * d2
        return out

    op = LinearOperator((n, n), matvec=apply, dtype=np.float64)
    diag = w + ridge + 2.0 * lam1 + 6.0 * lam2
    pre = LinearOperator((n, n), matvec=lambda x: np.ravel(x) / diag, dtype=np.float64)
    s, _ = cg(op, rhs, M=pre, rtol=1e-6, maxiter=2000)
    return s - s.mean()
