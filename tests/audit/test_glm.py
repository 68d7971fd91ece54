"""The batched negative binomial fit against statsmodels' GLM on the same data."""

from __future__ import annotations

import numpy as np
import pytest

from carecontracts.audit.glm import fit_counts

sm = pytest.importorskip("statsmodels.api")


@pytest.fixture
def counts() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = np.linspace(-1, 1, 31)
    X = np.vander(x, 4, increasing=True)
    mu = np.exp(5 + 0.5 * x - 1.2 * x**2) * 2.0
    y = rng.negative_binomial(1 / 0.05, 1 / (1 + 0.05 * mu)).astype(float)
    use = np.ones(31, dtype=bool)
    use[14:17] = False  # a window left out, as the bunching estimator does
    offset = np.log(np.full(31, 2.0))  # bins two units wide
    return X, y, use, offset


def test_negative_binomial_matches_statsmodels_at_the_same_alpha(counts) -> None:
    X, y, use, offset = counts
    fit = fit_counts(X, y[None], use[None], offset)
    alpha = float(fit.alpha[0])
    assert alpha > 0  # the counts were drawn overdispersed
    reference = sm.GLM(y[use], X[use], family=sm.families.NegativeBinomial(alpha=alpha), offset=offset[use]).fit()
    assert fit.beta[0] == pytest.approx(reference.params, abs=1e-6)
    assert fit.cov[0] == pytest.approx(reference.cov_params(), abs=1e-8)
    assert fit.loglik[0] == pytest.approx(reference.llf, abs=1e-6)
    # The fitted means off the rows used are the model's predictions there (statsmodels' predict).
    assert fit.mu[0][~use] == pytest.approx(reference.predict(X[~use], offset=offset[~use]), rel=1e-7)


def test_alpha_solves_the_pearson_moment_equation(counts) -> None:
    X, y, use, offset = counts
    fit = fit_counts(X, y[None], use[None], offset)
    mu, alpha = fit.mu[0][use], fit.alpha[0]
    pearson = float(np.sum((y[use] - mu) ** 2 / (mu * (1 + alpha * mu))))
    assert pearson == pytest.approx(use.sum() - X.shape[1], abs=1e-6)


def test_poisson_when_alpha_is_zero(counts) -> None:
    X, y, use, offset = counts
    fit = fit_counts(X, y[None], use[None], offset, alpha=0.0)
    reference = sm.GLM(y[use], X[use], family=sm.families.Poisson(), offset=offset[use]).fit()
    assert fit.beta[0] == pytest.approx(reference.params, abs=1e-7)
    assert fit.loglik[0] == pytest.approx(reference.llf, abs=1e-6)


def test_counts_no_more_spread_than_poisson_give_alpha_zero() -> None:
    x = np.linspace(-1, 1, 20)
    X = np.vander(x, 2, increasing=True)
    y = np.round(np.exp(4 + x))  # on the curve to rounding: far less spread than Poisson
    fit = fit_counts(X, y[None], np.ones((1, 20), dtype=bool))
    assert fit.alpha[0] == 0.0 and fit.converged[0]


def test_a_batch_gives_each_row_its_own_fit(counts) -> None:
    X, y, use, offset = counts
    batch = np.stack([y, y * 3, np.roll(y, 2)])
    together = fit_counts(X, batch, np.tile(use, (3, 1)), offset)
    for i in range(3):
        alone = fit_counts(X, batch[i][None], use[None], offset)
        assert together.beta[i] == pytest.approx(alone.beta[0], abs=1e-7)
        assert together.alpha[i] == pytest.approx(alone.alpha[0], abs=1e-9)
