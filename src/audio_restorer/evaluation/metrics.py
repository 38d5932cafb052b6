"""Objective quality metrics against a clean reference."""

from __future__ import annotations

import numpy as np

from audio_restorer.errors import ParameterError


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al., 2019).

    Parameters
    ----------
    reference, estimate : np.ndarray [shape=(channels, frames) or (frames,)]
        Same shape. Multichannel signals are scored jointly (all channels flattened), with
        the mean of each channel removed first.
    """
    ref = np.asarray(reference, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    if ref.shape != est.shape:
        raise ParameterError(f"reference and estimate shapes differ: {ref.shape} vs {est.shape}")
    ref = ref - ref.mean(axis=-1, keepdims=True)
    est = est - est.mean(axis=-1, keepdims=True)
    ref, est = ref.ravel(), est.ravel()
    energy = float(np.dot(ref, ref))
    if energy == 0.0:
        raise ParameterError("reference is silent: SI-SDR is undefined")
    alpha = float(np.dot(est, ref)) / energy
    target = alpha * ref
    noise = est - target
    return float(10.0 * np.log10(np.dot(target, target) / max(np.dot(noise, noise), 1e-30)))
