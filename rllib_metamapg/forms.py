"""Names both engines share for how corrections are formed and estimated (no Ray, no torch).

``CORRECTION_FORMS``: "unroll" differentiates through the L inner steps (exactly in
the tabular engine, through the DiCE surrogate when sampled); "taylor" is the
first-order expansion.  "dice" is the RLlib side's earlier name for "unroll" and is
still accepted.  ``ESTIMATORS``: the RLlib learner's surrogates (see
:mod:`rllib_metamapg.dice`).  ``PARAMETERIZATIONS``: tabular policy forms.
"""

CORRECTION_FORMS = ("unroll", "taylor")
# Forms only the tabular engine's exact mode computes: "lola" evaluates agent i's value
# at (its current theta_i, its peers' look-ahead theta_j + eta grad_j V_j) and
# differentiates through that look-ahead (LOLA's exact-gradient form).
TABULAR_ONLY_FORMS = ("lola",)
FORM_ALIASES = {"dice": "unroll"}
ESTIMATORS = ("trajectory", "per_step")
PARAMETERIZATIONS = ("bernoulli", "softmax")
# MATRL: which equilibrium of the current-vs-predicted meta-game when it has several.
META_CHOICES = ("last", "first", "random")


def canonical_form(form: str) -> str:
    return FORM_ALIASES.get(form, form)
