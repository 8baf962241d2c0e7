"""Monte Carlo answers for models without closed forms (nonlinear additive-noise SCMs).

Every estimate carries its standard error and is reproducible from its seed. Three tricks keep the
error small: the target's own noise is integrated out analytically (its mean is zero, so averaging the
noise-free part of its equation is exact in that coordinate); contrasts such as an ATE use the same
noise in both worlds, so the standard error is that of the paired difference; and conditioning on
continuous evidence uses likelihood weighting (evidence nodes are clamped, each unit weighted by the
noise density that reproduces the observed value) rather than rejection.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from causal.graph import descendants
from causal.sampling import draw_noise, structural_mean
from causal.spec import SCM

DEFAULT_SAMPLES = 1_000_000
DEFAULT_WEIGHTED_SAMPLES = 400_000
CHUNK = 125_000
MAX_SAMPLES = 100_000_000  # ~1 minute per world at CHUNK-sized steps; weighted queries hold all draws in memory
MAX_WEIGHTED_SAMPLES = 10_000_000  # likelihood weighting keeps every draw: ~80 MB per node at this cap


def check_samples(n: int, cap: int = MAX_SAMPLES) -> int:
    """Refuse sample counts that are not positive integers or exceed `cap` before anything is allocated."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"samples must be a positive integer, got {n!r}")
    if n > cap:
        raise ValueError(f"samples={n} exceeds the cap of {cap:,} draws for this query (lower 'samples')")
    return int(n)


@dataclass(frozen=True)
class Estimate:
    """A Monte Carlo estimate, its standard error and how many draws it used."""

    value: float
    standard_error: float
    n_samples: int


def _target_means(scm: SCM, target: str, noise: Mapping[str, np.ndarray]) -> np.ndarray:
    """Per-unit E[target | its parents]: the target's noise integrated out."""
    values: dict[str, np.ndarray] = {}
    n = len(noise[target])
    for node in scm.order:
        equation = scm.equations[node]
        mean = structural_mean(equation, values, n)
        if node == target:
            if not np.all(np.isfinite(mean)):
                raise ValueError(f"node {node!r}: its equation produced non-finite values (e.g. log of a negative, "
                                 f"division by zero or overflow)")
            return mean
        values[node] = mean + equation.noise_std * noise[node]
        if not np.all(np.isfinite(values[node])):
            raise ValueError(f"node {node!r}: its equation produced non-finite values (e.g. log of a negative)")
    raise KeyError(target)


def world_means(
    worlds: Sequence[SCM],
    target: str,
    n: int = DEFAULT_SAMPLES,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """E[target] in each (mutilated) world with shared noise; returns the means and their covariance.

    The covariance of the mean is accumulated with Chan et al.'s pairwise update of centred sums (each
    chunk two-pass, chunks merged exactly), not as E[f f^T] - E[f] E[f]^T: that difference cancels
    catastrophically when the target barely varies (a deterministic Y = sin(X) under do(X)) and can come
    out negative, so the standard error's square root failed. Here every variance is a sum of squares.
    """
    n = check_samples(n)
    rng = np.random.default_rng(seed)
    count, mean, centred = 0, np.zeros(len(worlds)), np.zeros((len(worlds), len(worlds)))
    while count < n:
        size = min(CHUNK, n - count)
        noise = draw_noise(worlds[0], size, rng)
        f = np.stack([_target_means(world, target, noise) for world in worlds])
        chunk_mean = f.mean(axis=1)
        deviation = f - chunk_mean[:, None]
        delta = chunk_mean - mean
        total = count + size
        centred += deviation @ deviation.T + np.outer(delta, delta) * (count * size / total)
        mean = mean + delta * (size / total)
        count = total
    if not np.all(np.isfinite(mean)) or not np.all(np.isfinite(centred)):
        raise ValueError(f"the Monte Carlo mean of {target!r} is not finite (its equation overflows for some draws)")
    cov = centred / max(count - 1, 1) / count
    return mean, cov


def _clamped_pass(
    scm: SCM,
    given: Mapping[str, float],
    noise: Mapping[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """Sample non-evidence nodes, clamp evidence nodes; return values, noise used and log weights."""
    n = len(next(iter(noise.values())))
    values: dict[str, np.ndarray] = {}
    used: dict[str, np.ndarray] = {}
    log_w = np.zeros(n)
    for node in scm.order:
        equation = scm.equations[node]
        mean = structural_mean(equation, values, n)
        std = equation.noise_std
        if node in given:
            residual = given[node] - mean
            if std > 0:
                used[node] = residual / std
                log_w += -0.5 * used[node] ** 2 - math.log(std)
            else:
                used[node] = np.zeros(n)
                log_w[np.abs(residual) > 1e-9 * (1 + abs(given[node]))] = -np.inf
            values[node] = np.full(n, float(given[node]))
        else:
            used[node] = noise[node]
            values[node] = mean + std * noise[node]
    return values, used, log_w


def _weighted(f: np.ndarray, log_w: np.ndarray, what: str) -> Estimate:
    finite = np.isfinite(log_w)
    if not finite.any():
        raise ValueError(f"{what} has probability zero under the model (every sample contradicts it)")
    w = np.exp(log_w - log_w[finite].max())
    w /= w.sum()
    with np.errstate(all="ignore"):
        value = float(w @ f)
        se = float(np.sqrt(np.sum(w**2 * (f - value) ** 2)))
    if not (math.isfinite(value) and math.isfinite(se)):
        raise ValueError(f"the weighted mean given {what} is not finite (an equation overflows or is undefined)")
    return Estimate(value, se, len(f))


def conditional_mean(
    scm: SCM, target: str, given: Mapping[str, float], n: int | None = None, seed: int = 0
) -> Estimate:
    """E[target | given] by likelihood weighting (the model may already be mutilated by do())."""
    if not given:
        n = n or DEFAULT_SAMPLES
        mean, cov = world_means([scm], target, n, seed)
        return Estimate(float(mean[0]), float(math.sqrt(max(cov[0, 0], 0.0))), n)
    if target in given:
        return Estimate(float(given[target]), 0.0, 0)
    n = check_samples(n or DEFAULT_WEIGHTED_SAMPLES, MAX_WEIGHTED_SAMPLES)
    noise = draw_noise(scm, n, np.random.default_rng(seed))
    values, _, log_w = _clamped_pass(scm, given, noise)
    downstream_evidence = (descendants(scm.graph, [target]) - {target}) & set(given)
    if downstream_evidence:
        f = values[target]
    else:  # the target's own noise does not affect the weights: integrate it out
        f = values[target] - scm.equations[target].noise_std * noise[target]
    return _weighted(f, log_w, f"the evidence {dict(given)}")


def counterfactual_mean(
    scm: SCM, evidence: Mapping[str, float], do: Mapping[str, float], target: str, n: int | None = None, seed: int = 0
) -> Estimate:
    """Abduction (noise from residuals, unobserved noise by likelihood weighting), action, prediction."""
    hidden = [node for node in scm.order if node not in evidence and scm.equations[node].noise_std > 0]
    # a fully observed unit has exactly one compatible noise vector
    n = check_samples(n or DEFAULT_WEIGHTED_SAMPLES, MAX_WEIGHTED_SAMPLES) if hidden else 1
    noise = draw_noise(scm, n, np.random.default_rng(seed))
    _, abducted, log_w = _clamped_pass(scm, evidence, noise)
    world = scm.do(do)
    values: dict[str, np.ndarray] = {}
    for node in world.order:
        equation = world.equations[node]
        values[node] = structural_mean(equation, values, n) + equation.noise_std * abducted[node]
    if not np.all(np.isfinite(values[target])):
        raise ValueError(f"node {target!r}: its counterfactual value is not finite")
    return _weighted(values[target], log_w, f"the evidence {dict(evidence)}")
