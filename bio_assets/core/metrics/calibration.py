"""Temperature scaling (Guo et al. 2017) fitted on validation images."""

from __future__ import annotations

import numpy as np

# Candidate temperatures, log-spaced: a grid is deterministic and cannot diverge, and the
# validation NLL is smooth and unimodal in log T, so 241 points find it to within 2.3%.
TEMPERATURES = np.exp(np.linspace(np.log(0.05), np.log(20.0), 241))


def scaled(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax probabilities ``(N, K)`` as if the logits had been divided by ``temperature``
    (softmax(log p / T) equals softmax(logits / T): log p differs from the logits by a per-row constant)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    logits = np.log(np.clip(probabilities, 1e-300, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(picked, 1e-300, 1.0))))


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimizes the NLL of ``labels`` under ``probabilities`` ``(N, K)``."""
    if len(labels) == 0:
        raise ValueError("fitting a temperature needs at least one labelled image")
    losses = [negative_log_likelihood(scaled(probabilities, t), labels) for t in TEMPERATURES]
    return float(TEMPERATURES[int(np.argmin(losses))])
