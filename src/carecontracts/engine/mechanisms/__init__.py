"""Payment mechanisms, one module each; importing this package registers them all."""

from carecontracts.engine.mechanisms import (  # noqa: F401
    activity,
    aligned_payment,
    best_practice_topup,
    block,
    capitation,
    cost_and_volume,
    low_volume_block,
    marginal_rate,
    outcome_incentive,
    quality_incentive,
    risk_share,
    shared_savings,
    spell,
    withhold,
)
