"""Conditional-independence and two-sample tests used by structure discovery.

Continuous data: Fisher's z on the partial correlation (exact for Gaussian data); for nonlinear
additive-noise data, `PolynomialResidualTest` residualises both variables on additive cubic splines of the
conditioning set (on normal scores) and looks for linear or quadratic dependence between the residuals
(Fisher's z per pair, Bonferroni-combined), so U-shaped relations are not missed. Discrete data: the
G-test (likelihood-ratio chi-square) of independence within each stratum of the conditioning set, with
degrees of freedom reduced for empty rows and columns. Each test returns a p-value.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from scipy import stats


class FisherZ:
    """Partial-correlation test on a continuous data matrix (rows are units, columns variables)."""

    def __init__(self, data: np.ndarray) -> None:
        self.n = data.shape[0]
        self.corr = np.corrcoef(data, rowvar=False)

    def pvalue(self, i: int, j: int, given: Sequence[int]) -> float:
        """p-value of ``X_i independent of X_j given X_given``."""
        index = [i, j, *given]
        precision = np.linalg.pinv(self.corr[np.ix_(index, index)])
        r = -precision[0, 1] / np.sqrt(precision[0, 0] * precision[1, 1])
        r = float(np.clip(r, -1 + 1e-12, 1 - 1e-12))
        dof = self.n - len(given) - 3
        if dof < 1:
            return 1.0
        z = np.sqrt(dof) * np.arctanh(r)
        return float(2 * stats.norm.sf(abs(z)))


class PolynomialResidualTest:
    """Conditional-independence test for smooth nonlinear relations between continuous variables."""

    KNOTS = (0.1, 0.25, 0.4, 0.6, 0.75, 0.9)

    def __init__(self, data: np.ndarray) -> None:
        # normal scores: heavy tails would otherwise dominate the polynomial fits
        ranks = stats.rankdata(data, axis=0)
        self.data = stats.norm.ppf(ranks / (data.shape[0] + 1))
        self.n = data.shape[0]

    def _basis(self, given: Sequence[int]) -> np.ndarray:
        """Additive cubic splines (knots at quantiles) of each conditioning variable, plus pairwise products."""
        z = self.data[:, list(given)]
        columns = [np.ones(self.n)]
        for k in range(z.shape[1]):
            x = z[:, k]
            columns += [x, x**2, x**3]
            columns += [np.clip(x - knot, 0, None) ** 3 for knot in np.quantile(x, self.KNOTS)]
        columns += [z[:, a] * z[:, b] for a, b in itertools.combinations(range(z.shape[1]), 2)]
        return np.column_stack(columns)

    def _residual(self, k: int, given: Sequence[int]) -> np.ndarray:
        y = self.data[:, k]
        if not given:
            return y - y.mean()
        basis = self._basis(given)
        coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
        return y - basis @ coef

    def pvalue(self, i: int, j: int, given: Sequence[int]) -> float:
        """Bonferroni-combined p-value over (r_i, r_j), (r_i^2, r_j), (r_i, r_j^2).

        Products of two residual magnitudes are left out on purpose: both may depend on the
        conditioning set (heteroscedasticity) without any conditional dependence between i and j.
        """
        ri, rj = self._residual(i, given), self._residual(j, given)
        pairs = [(ri, rj), (ri**2, rj), (ri, rj**2)]
        dof = self.n - len(given) - 3
        if dof < 1:
            return 1.0
        smallest = 1.0
        for a, b in pairs:
            if a.std() == 0 or b.std() == 0:
                continue
            r = float(np.clip(np.corrcoef(a, b)[0, 1], -1 + 1e-12, 1 - 1e-12))
            smallest = min(smallest, float(2 * stats.norm.sf(abs(np.sqrt(dof) * np.arctanh(r)))))
        return min(1.0, smallest * len(pairs))


class GTest:
    """Likelihood-ratio test of conditional independence for integer-coded discrete data."""

    def __init__(self, data: np.ndarray, cardinalities: Sequence[int]) -> None:
        self.data = data.astype(int)
        self.cards = list(cardinalities)

    def pvalue(self, i: int, j: int, given: Sequence[int]) -> float:
        """p-value of ``X_i independent of X_j given X_given``."""
        ri, rj = self.cards[i], self.cards[j]
        if given:
            strata = np.ravel_multi_index(tuple(self.data[:, k] for k in given), [self.cards[k] for k in given])
            n_strata = int(np.prod([self.cards[k] for k in given]))
        else:
            strata, n_strata = np.zeros(len(self.data), dtype=int), 1
        cell = (strata * ri + self.data[:, i]) * rj + self.data[:, j]
        counts = np.bincount(cell, minlength=n_strata * ri * rj).reshape(n_strata, ri, rj).astype(float)
        rows, cols = counts.sum(axis=2, keepdims=True), counts.sum(axis=1, keepdims=True)
        total = counts.sum(axis=(1, 2), keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            expected = rows * cols / total
            terms = np.where(counts > 0, counts * np.log(counts / expected), 0.0)
        statistic = 2.0 * float(terms.sum())
        dof = int(
            np.sum(
                np.clip((rows[..., 0] > 0).sum(axis=1) - 1, 0, None)
                * np.clip((cols[:, 0, :] > 0).sum(axis=1) - 1, 0, None)
            )
        )
        if dof == 0:
            return 1.0
        return float(stats.chi2.sf(statistic, dof))


def distribution_shift_pvalue(a: np.ndarray, b: np.ndarray, discrete: bool) -> float:
    """p-value that two samples of one variable come from the same distribution."""
    if discrete:
        size = int(max(a.max(), b.max())) + 1
        table = np.stack([np.bincount(a, minlength=size), np.bincount(b, minlength=size)])
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[1] < 2:
            return 1.0
        return float(stats.chi2_contingency(table)[1])
    return float(stats.ks_2samp(a, b).pvalue)


def dependence_pvalue(x: np.ndarray, y: np.ndarray, kind: str) -> float:
    """p-value of marginal independence of two variables observed together (kind: discrete/linear/nonlinear)."""
    data = np.column_stack([x, y])
    if kind == "discrete":
        cards = [int(x.max()) + 1, int(y.max()) + 1]
        return GTest(data, cards).pvalue(0, 1, [])
    if kind == "nonlinear":
        return PolynomialResidualTest(data).pvalue(0, 1, [])
    return FisherZ(data).pvalue(0, 1, [])
