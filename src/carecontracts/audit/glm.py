"""Negative binomial (NB2) regression with a log link, fitted to many count vectors at once.

The bunching estimator fits the same kind of small model (a polynomial in the bin centre, a
few dozen bins) hundreds of times: every candidate degree, every excluded window, every
placebo threshold, every bootstrap replicate. Each is one row of a batch here, so a whole
grid is a handful of array operations rather than a Python loop of model fits.

Model: y_j ~ NB2(μ_j, α), log μ_j = offset_j + x_j'β, Var y_j = μ_j + α·μ_j². α = 0 is the
Poisson model. β is found by iteratively reweighted least squares (weights μ/(1+αμ)) on the
rows where `use` is true; α by the Pearson moment equation Σ (y−μ)²/(μ(1+αμ)) = n − p
(0 when the Poisson Pearson statistic is already at or under n − p), alternating with β. The
covariance of β is the model-based (X'WX)⁻¹ at the final fit. The results agree with
statsmodels' GLM with `families.NegativeBinomial(alpha=α)` (tests/audit/test_glm.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

MAX_ITERATIONS = 60
TOLERANCE = 1e-8
MAX_ETA = 40.0


@dataclass(frozen=True)
class CountFit:
    """One fit per batch row."""

    beta: np.ndarray  # (B, p)
    mu: np.ndarray  # (B, n): fitted means on every row, used or not
    cov: np.ndarray  # (B, p, p)
    alpha: np.ndarray  # (B,)
    loglik: np.ndarray  # (B,) over the rows used
    used: np.ndarray  # (B,) rows used
    converged: np.ndarray  # (B,) bool

    @property
    def parameters(self) -> int:
        return self.beta.shape[1]

    @property
    def aic(self) -> np.ndarray:
        """Akaike's criterion counting β and α."""
        return -2 * self.loglik + 2 * (self.parameters + 1)


def loglik(y: np.ndarray, mu: np.ndarray, alpha: np.ndarray, use: np.ndarray) -> np.ndarray:
    """NB2 log-likelihood summed over the rows used (Poisson where α is 0)."""
    a = alpha[:, None]
    safe_mu = np.maximum(mu, 1e-300)
    poisson = y * np.log(safe_mu) - mu - gammaln(y + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1 / np.where(a > 1e-10, a, 1.0)
        nb = (gammaln(y + inv) - gammaln(inv) - gammaln(y + 1) + y * np.log(a * safe_mu / (1 + a * safe_mu)) - inv * np.log1p(a * safe_mu))
    value = np.where(a > 1e-10, nb, poisson)
    return np.where(use, value, 0.0).sum(axis=1)


def _solve_alpha(y: np.ndarray, mu: np.ndarray, use: np.ndarray, df: np.ndarray, start: np.ndarray | None = None,
                 steps: int = 40) -> np.ndarray:
    """α ≥ 0 solving the Pearson moment equation f(α) = Σ r²/(μ(1+αμ)) − df = 0.

    f is convex and decreasing in α. From below the root Newton's method climbs to it without
    overshooting; from above, one step lands at or below it (the tangent lies under a convex
    curve), so a warm start converges too. Where f(0) ≤ 0 the counts are no more spread than
    Poisson: α = 0."""
    r2 = np.where(use, (y - mu) ** 2, 0.0)
    safe = np.where(use, mu, 1.0)
    alpha = np.zeros(len(y)) if start is None else np.maximum(np.asarray(start, dtype=np.float64), 0.0).copy()
    for _ in range(steps):
        spread = 1 + alpha[:, None] * safe
        f = (r2 / (safe * spread)).sum(axis=1) - df
        slope = -(r2 / spread**2).sum(axis=1)
        step = np.where(slope < 0, -f / np.where(slope < 0, slope, -1.0), 0.0)
        new = np.maximum(alpha + step, 0.0)
        done = np.abs(new - alpha) <= 1e-10 * (1 + alpha)
        alpha = new
        if np.all(done):
            break
    return alpha


def fit_counts(
    X: np.ndarray,
    y: np.ndarray,
    use: np.ndarray,
    offset: np.ndarray | None = None,
    alpha: float | np.ndarray | None = None,
    start: np.ndarray | None = None,
    alpha_start: np.ndarray | None = None,
) -> CountFit:
    """Fit each batch row. `X` is (n, p) shared by all rows or (B, n, p); `y` and `use` (B, n);
    `offset` (n,) or (B, n); `alpha` fixed (a number or one per row) or None to estimate it;
    `start` (B, p) warm-starts β and `alpha_start` (B,) the estimated α. β and α are updated
    together, one IRLS step and one Newton step for α per round, on the rows that have not yet
    converged; α is then solved exactly for the final β."""
    y = np.asarray(y, dtype=np.float64)
    batch, n = y.shape
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 2:
        X = np.broadcast_to(X, (batch, *X.shape))
    p = X.shape[2]
    use = np.asarray(use, dtype=bool) & np.isfinite(y)
    off = np.zeros((batch, n)) if offset is None else np.broadcast_to(np.asarray(offset, dtype=np.float64), (batch, n))
    weight_mask = use.astype(np.float64)
    used = use.sum(axis=1)
    df = np.maximum(used - p, 1).astype(np.float64)
    y0 = np.where(use, y, 0.0)
    estimate_alpha = alpha is None
    if alpha is not None:
        a = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (batch,)).copy()
    elif alpha_start is not None:
        a = np.maximum(np.nan_to_num(np.asarray(alpha_start, dtype=np.float64)), 0.0)
    else:
        a = np.zeros(batch)

    if start is None:
        # Start from a weighted least-squares fit of log(y + 1/2).
        eta = np.log(y0 + 0.5)
        w = weight_mask * (y0 + 0.5)
        xtw = X * w[:, :, None]
        beta = _solve(np.matmul(xtw.transpose(0, 2, 1), X), _times(xtw.transpose(0, 2, 1), eta - off))
    else:
        beta = np.asarray(start, dtype=np.float64).copy()
    converged = np.zeros(batch, dtype=bool)
    active = np.arange(batch)
    for iteration in range(MAX_ITERATIONS):
        Xa, offa, ya, wm = X[active], off[active], y0[active], weight_mask[active]
        eta = np.clip(_times(Xa, beta[active]) + offa, -MAX_ETA, MAX_ETA)
        mu = np.exp(eta)
        old_alpha = a[active]
        if estimate_alpha and iteration >= 1:
            a[active] = _solve_alpha(ya, mu, use[active], df[active], start=old_alpha, steps=1)
        w = wm * mu / (1 + a[active][:, None] * mu)
        working = eta - offa + (ya - mu) / mu
        xtw = Xa * w[:, :, None]
        new = _solve(np.matmul(xtw.transpose(0, 2, 1), Xa), _times(xtw.transpose(0, 2, 1), working))
        step = np.max(np.abs(new - beta[active]), axis=1)
        beta[active] = new
        settled = (step < TOLERANCE * (1 + np.max(np.abs(new), axis=1))) & (np.abs(a[active] - old_alpha) <= 1e-7 * (1 + old_alpha))
        if iteration == 0 and estimate_alpha:
            settled[:] = False
        converged[active[settled]] = True
        active = active[~settled]
        if len(active) == 0:
            break
    if estimate_alpha:  # α exactly at its moment equation for the final β
        mu = np.exp(np.clip(_times(X, beta) + off, -MAX_ETA, MAX_ETA))
        a = _solve_alpha(y0, mu, use, df, start=a)
    eta = np.clip(_times(X, beta) + off, -MAX_ETA, MAX_ETA)
    mu = np.exp(eta)
    w = weight_mask * mu / (1 + a[:, None] * mu)
    information = np.matmul((X * w[:, :, None]).transpose(0, 2, 1), X)
    cov = _inverse(information)
    finite = np.all(np.isfinite(beta), axis=1) & np.all(np.isfinite(cov.reshape(batch, -1)), axis=1)
    return CountFit(beta, mu, cov, a, loglik(y0, mu, a, use), used, converged & finite)


def _times(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched matrix × vector: (B, m, k) @ (B, k) → (B, m)."""
    return np.matmul(a, b[:, :, None])[:, :, 0]


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched solve with a tiny ridge so that a singular row gives a finite (flagged) answer."""
    ridge = 1e-12 * np.trace(a, axis1=1, axis2=2)[:, None, None] * np.eye(a.shape[1])
    try:
        return np.linalg.solve(a + ridge, b[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:
        return np.einsum("bpq,bq->bp", np.linalg.pinv(a + ridge), b)


def _inverse(a: np.ndarray) -> np.ndarray:
    ridge = 1e-12 * np.trace(a, axis1=1, axis2=2)[:, None, None] * np.eye(a.shape[1])
    try:
        return np.linalg.inv(a + ridge)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(a + ridge)
