"""Names of the per-module metrics MATRL's learner logs (``result["learners"][module]``)."""

RHO = "matrl_rho"                      # P(current) of this agent in the meta-game's answer
TRUST_STEP_NORM = "matrl_trust_step_norm"  # |theta_hat - theta|: PPO's epochs
BR_STEP_NORM = "matrl_br_step_norm"    # |theta' - theta_hat|: the best response (or mixing)
BR_WEIGHT_CLIPPED = "matrl_br_weight_clipped"  # share of rows whose peer weight was truncated
META_PAYOFF_PREFIX = "matrl_g_"        # + profile bits in sorted module order, 1 = predicted


def meta_payoff_key(profile) -> str:
    """``matrl_g_01``: this agent's meta-game payoff when module 0 keeps its current policy
    and module 1 plays its predicted one (modules in sorted id order)."""
    return META_PAYOFF_PREFIX + "".join(str(int(b)) for b in profile)
