"""Autoregressive (AR) modelling core shared by the impulsive-noise stages.

Clicks, crackle and clipping all damage a few samples of an otherwise predictable signal. An AR
model of the local music (a linear predictor of each sample from the previous ``order`` samples)
both finds that damage (the prediction error is far larger than usual there) and repairs it
(least-squares AR interpolation, "LSAR", Janssen, Veldhuis & Vries 1986; Godsill & Rayner 1998):
the damaged samples are chosen to minimise the energy of the prediction error around them.

Everything here is vectorised over analysis frames and over damaged runs, and every quantity is
computed on a grid of *absolute* sample positions (``offset`` is the first frame's index in the
file), so a window of a file processed with enough context gives exactly the same samples as
the whole file.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

#: Smallest residual scale considered (about -100 dBFS): below it everything is "silence".
SCALE_FLOOR = 1e-5


def _layout(n: int, offset: int, hop: int) -> tuple[int, int]:
    """(lead, frames): samples of the first absolute frame before local sample 0, frame count."""
    lead = offset % hop
    return lead, -(-(lead + n) // hop)


def levinson(r: np.ndarray) -> np.ndarray:
    """Prediction-error filters from autocorrelations, vectorised Levinson–Durbin.

    Parameters
    ----------
    r : np.ndarray [shape=(frames, order + 1)]
        Autocorrelation lags 0..order of each frame (lag 0 must be positive).

    Returns
    -------
    np.ndarray [shape=(frames, order + 1)]
        ``c`` with ``c[:, 0] == 1`` such that ``e[n] = sum_k c[k] x[n - k]`` is the prediction
        error (minimum phase, as the autocorrelation method guarantees).
    """
    frames, p1 = r.shape
    a = np.zeros((frames, p1))
    a[:, 0] = 1.0
    err = r[:, 0].copy()
    for i in range(1, p1):
        acc = np.einsum("fj,fj->f", a[:, :i], r[:, i:0:-1])
        k = -acc / err
        a[:, 1 : i + 1] += k[:, None] * a[:, i - 1 :: -1].copy()
        err *= 1.0 - k * k
        err = np.maximum(err, 1e-12 * r[:, 0])
    return a


def frame_ar(
    x: np.ndarray, *, offset: int, hop: int, win: int, order: int, exclude: np.ndarray | None = None
) -> np.ndarray:
    """AR prediction-error filters of one channel, one per absolute frame of ``hop`` samples.

    Frame ``f`` (absolute) covers samples ``[f*hop, (f+1)*hop)``; its model is estimated by the
    autocorrelation method over a Hann window of ``win`` samples centred on it.

    Parameters
    ----------
    x : np.ndarray [shape=(frames,)]
    offset : int
        Absolute index of ``x[0]``.
    exclude : np.ndarray [shape=(frames,), dtype=bool], optional
        Samples left out of the estimate (set to zero), e.g. known clipped samples.

    Returns
    -------
    np.ndarray [shape=(n_frames, order + 1)]
        Filters for the frames that overlap ``x``, the first being absolute frame
        ``offset // hop``.
    """
    n = x.shape[0]
    lead, nf = _layout(n, offset, hop)
    pre = win // 2 - hop // 2
    total = (nf - 1) * hop + win
    xp = np.zeros(total)
    src = x if exclude is None else np.where(exclude, 0.0, x)
    xp[lead + pre : lead + pre + n] = src[: total - lead - pre]
    frames = sliding_window_view(xp, win)[::hop][:nf]
    w = np.hanning(win + 1)[:-1]
    nfft = 1 << int(np.ceil(np.log2(win + order + 1)))
    spec = np.fft.rfft(frames * w, nfft, axis=1)
    r = np.fft.irfft(spec.real**2 + spec.imag**2, nfft, axis=1)[:, : order + 1]
    # White-noise correction (-50 dB) and an absolute floor keep every filter well conditioned,
    # including on pure tones and digital silence.
    r[:, 0] = r[:, 0] * (1.0 + 1e-5) + 1e-10 * win
    return levinson(r)


def residuals(
    x: np.ndarray, c: np.ndarray, *, offset: int, hop: int
) -> tuple[np.ndarray, np.ndarray]:
    """Forward and backward prediction errors of one channel with per-frame filters.

    The forward error at ``n`` predicts ``x[n]`` from the ``order`` samples before it, the
    backward error from the ``order`` samples after it (for the stationary autocorrelation
    model the backward predictor has the same coefficients). A click makes both large on the
    damaged samples; a musical onset makes the forward error large *after* it and the backward
    error large *before* it, which is how the detector tells them apart.

    Returns
    -------
    forward, backward : np.ndarray [shape=(frames,)]
    """
    n = x.shape[0]
    p = c.shape[1] - 1
    lead, nf = _layout(n, offset, hop)
    span = nf * hop
    xq = np.zeros(span + 2 * p)
    xq[p + lead : p + lead + n] = x
    view = sliding_window_view(xq, p + 1)  # view[m] = xq[m .. m+p]
    # forward: local t (from -lead) needs x[t-p .. t] = xq[t+lead .. t+lead+p] = view[t+lead]
    fwd = np.matmul(view[:span].reshape(nf, hop, p + 1), c[:, ::-1, None])[..., 0]
    # backward: needs x[t .. t+p] = view[t+lead+p]
    bwd = np.matmul(view[p : p + span].reshape(nf, hop, p + 1), c[:, :, None])[..., 0]
    return fwd.ravel()[lead : lead + n], bwd.ravel()[lead : lead + n]


def robust_scale(e: np.ndarray, *, offset: int, seg: int, radius: int) -> np.ndarray:
    """Local robust standard deviation of a residual, per sample.

    The median absolute value over absolute segments of ``seg`` samples (scaled to a Gaussian
    standard deviation), then the median of those over ``2 * radius + 1`` neighbouring
    segments: a few clicks, even wide ones, barely move it, while it follows the music's
    loudness within tens of milliseconds.
    """
    n = e.shape[0]
    lead, ns = _layout(n, offset, seg)
    # partial segments at the ends are completed by repeating their edge values (a plain
    # median is several times faster than a NaN-aware one)
    # (single precision: the scale is a threshold unit, and the partial sort is the costly part)
    a = np.pad(np.abs(e).astype(np.float32), (lead, ns * seg - lead - n), mode="edge")
    med = np.median(a.reshape(ns, seg), axis=1).astype(np.float64) / 0.6745
    padded = np.pad(med, radius, mode="edge")
    smooth = np.median(sliding_window_view(padded, 2 * radius + 1), axis=1)
    # ... but never below the median of the segment and its two neighbours: where the model
    # fits badly for a moment (an onset, a frame whose estimate a loud click disturbed) the
    # error rises for tens of milliseconds, which is not an impulse.
    near = np.median(sliding_window_view(padded[radius - 1 : padded.size - radius + 1], 3), axis=1)
    smooth = np.maximum(np.maximum(smooth, near), SCALE_FLOOR)
    return np.repeat(smooth, seg)[lead : lead + n]


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and stop (exclusive) indices of the runs of True in a 1-D boolean array."""
    d = np.diff(mask.astype(np.int8), prepend=0, append=0)
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def _bucket(values: np.ndarray, minimum: int = 4) -> np.ndarray:
    """Round up to powers of two (at least ``minimum``), so runs can be solved in batches."""
    v = np.maximum(values, minimum)
    return (1 << np.ceil(np.log2(v)).astype(np.int64)).astype(np.int64)


def lsar_fill(
    x: np.ndarray,
    mask: np.ndarray,
    starts: np.ndarray,
    stops: np.ndarray,
    filters: np.ndarray,
    *,
    max_unknown: int,
    level: np.ndarray | None = None,
    constraint_iters: int = 8,
) -> np.ndarray:
    """Least-squares AR interpolation of the samples of ``mask`` in the given runs.

    For each run ``[s, t)`` the unknowns are the masked samples in ``[s - p, s + E + p)`` (``E``
    the run length rounded up to a power of two, ``p`` the order); they are chosen to minimise
    the energy of every prediction error that involves them. Only the run's own samples are
    written back, so each run's result depends on a bounded neighbourhood only. Runs are
    solved in batches of equal padded size with one batched dense solve: the normal matrix is
    the autocorrelation of the prediction-error filter restricted to the unknown positions.

    Parameters
    ----------
    x : np.ndarray [shape=(frames,)], float64
    mask : np.ndarray [shape=(frames,), dtype=bool]
        Samples to be re-estimated.
    starts, stops : np.ndarray [shape=(runs,)]
        Runs of ``mask`` to write back (stop exclusive).
    filters : np.ndarray [shape=(runs, order + 1)]
        Prediction-error filter used for each run.
    max_unknown : int
        Runs longer than this are left unchanged (bounds the cost).
    level : np.ndarray [shape=(frames,)], optional
        Consistency constraint for declipping: every unknown sample ``n`` with ``level[n] > 0``
        must satisfy ``sign(x[n]) * y[n] >= level[n]``. Enforced by an active-set loop:
        violating samples are pinned to the level and the rest re-solved.

    Returns
    -------
    np.ndarray [shape=(frames,)]
        A copy of ``x`` with the runs' samples replaced.
    """
    y = x.copy()
    if starts.size == 0:
        return y
    n = x.shape[0]
    p = filters.shape[1] - 1
    lengths = stops - starts
    ext = _bucket(lengths)
    keep = lengths <= max_unknown
    for e_size in np.unique(ext[keep]):
        e_size = int(e_size)
        sel = np.flatnonzero(keep & (ext == e_size))
        seg_len = e_size + 4 * p
        idx = (starts[sel] - 2 * p)[:, None] + np.arange(seg_len)[None, :]
        inside = (idx >= 0) & (idx < n)
        cidx = np.clip(idx, 0, n - 1)
        seg = np.where(inside, x[cidx], 0.0)
        own = (idx >= starts[sel, None]) & (idx < stops[sel, None]) & inside
        unk = (inside & mask[cidx]) | own
        unk[:, :p] = False
        unk[:, e_size + 3 * p :] = False
        lvl = None
        if level is not None:
            lvl = np.where(unk, level[cidx], 0.0) * np.sign(seg)
        # the system size depends on each run alone, so a run's result does not depend on
        # which other runs share its batch (LAPACK's blocking depends on the size)
        m_size = _bucket(unk.sum(axis=1), 1)
        for m in np.unique(m_size):
            g = m_size == m
            sol = _solve_batch(
                seg[g],
                unk[g],
                filters[sel[g]],
                None if lvl is None else lvl[g],
                int(m),
                constraint_iters,
            )
            w = own[g]
            y[idx[g][w]] = sol[w]
    return y


def _solve_batch(
    seg: np.ndarray, unk: np.ndarray, c: np.ndarray, lvl: np.ndarray | None, m: int, iters: int
) -> np.ndarray:
    """Solve a batch of LSAR problems on equal-length segments; returns the filled segments.

    ``unk`` must be False in the first and last ``p`` samples of each segment, so that every
    prediction involving an unknown lies inside the segment and the normal matrix is exactly
    ``r_c(|i - j|)``, the filter's autocorrelation. ``lvl`` (signed levels, 0 = free) adds the
    declipping constraint ``y * sign(lvl) >= |lvl|``.
    """
    b = seg.shape[0]
    p = c.shape[1] - 1
    rc = np.stack(
        [np.einsum("bk,bk->b", c[:, : p + 1 - lag], c[:, lag:]) for lag in range(p + 1)], 1
    )
    rc = np.concatenate([rc, np.zeros((b, 1))], axis=1)  # index p+1 = "too far apart"
    pinned = np.zeros_like(unk)
    values = seg.copy()
    out = seg.copy()
    todo = np.arange(b)  # problems still to be (re-)solved; each is solved on its own data
    for _ in range(iters if lvl is not None else 1):
        free = unk[todo] & ~pinned[todo]
        out[todo] = _solve_once(values[todo], free, c[todo], rc[todo], m)
        if lvl is None:
            break
        lv = lvl[todo]
        bad = free & (lv != 0) & (out[todo] * np.sign(lv) < np.abs(lv))
        rows = bad.any(axis=1)
        if not rows.any():
            break
        pinned[todo] |= bad
        values[todo] = np.where(bad, lv, values[todo])
        out[todo] = np.where(pinned[todo], values[todo], out[todo])
        todo = todo[rows]
    if lvl is not None:  # project what the loop did not settle onto the constraint
        out = np.where((lvl != 0) & (out * np.sign(lvl) < np.abs(lvl)), lvl, out)
    return out


def _solve_once(
    values: np.ndarray, free: np.ndarray, c: np.ndarray, rc: np.ndarray, m: int
) -> np.ndarray:
    """One unconstrained LSAR solve per row: ``values`` with its ``free`` samples replaced."""
    b = values.shape[0]
    p = c.shape[1] - 1
    counts = free.sum(axis=1)
    if counts.max() == 0:
        return values.copy()
    pos = np.argsort(~free, axis=1, kind="stable")[:, :m]
    valid = np.arange(m)[None, :] < counts[:, None]
    pos = np.where(valid, pos, p)
    known = np.where(free, 0.0, values)
    # prediction errors of the known part, rows r <-> segment index p + r
    e0 = np.matmul(sliding_window_view(known, p + 1, axis=1), c[:, ::-1, None])[..., 0]
    # rhs_i = -sum_k c_k e0[pos_i + k - p]: windows of e0 starting at pos_i - p
    win = sliding_window_view(e0, p + 1, axis=1)[np.arange(b)[:, None], pos - p]
    rhs = -np.matmul(win, c[:, :, None])[..., 0]
    lag = np.minimum(np.abs(pos[:, :, None] - pos[:, None, :]), p + 1)
    t = np.take_along_axis(rc, lag.reshape(b, -1), axis=1).reshape(b, m, m)
    t *= valid[:, :, None] & valid[:, None, :]
    di = np.arange(m)
    t[:, di, di] = np.where(valid, rc[:, :1] * (1.0 + 1e-9), 1.0)
    rhs = np.where(valid, rhs, 0.0)
    sol = np.linalg.solve(t, rhs[..., None])[..., 0]
    out = values.copy()
    bi = np.broadcast_to(np.arange(b)[:, None], pos.shape)
    out[bi[valid], pos[valid]] = sol[valid]
    return out
