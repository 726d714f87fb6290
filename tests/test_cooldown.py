"""The Ray-free lambda state machine behind the RLlib learner and CooldownCallback."""

import sys

import pytest

from rllib_metamapg.metamapg.method import switches as get_arm
from rllib_metamapg.metamapg.cooldown import CooldownController
from rllib_metamapg.schedules import ScheduleError


def test_plain_and_constant_arms_never_change():
    ippo = CooldownController(get_arm("ippo"))
    meta = CooldownController(get_arm("meta_mapg"))
    assert ippo.initial_state()["lambda"] == 0.0 and ippo.initial_state()["phase"] == "plain"
    s = meta.initial_state()
    for steps in (0, 10, 10**9):
        assert meta.advance(s, steps) == s
        assert meta.observe(s, steps, 1e9) == s


def test_hard_handoff_at_t_warm():
    c = CooldownController(get_arm("handoff"), kind="hard", handoff_steps=1000)
    s = c.initial_state()
    s = c.advance(s, 999)
    assert (s["lambda"], s["phase"]) == (1.0, "shaping")
    s = c.advance(s, 1000)
    assert (s["lambda"], s["phase"], s["handoff_at"]) == (0.0, "plain", 1000.0)


def test_anneal_follows_the_power_law_from_the_handoff():
    c = CooldownController(get_arm("handoff"), kind="anneal", handoff_steps=100,
                           anneal_power=2.0, anneal_scale=50.0)
    s = c.advance(c.initial_state(), 200)
    assert s["phase"] == "cooldown"
    assert s["lambda"] == pytest.approx((1 + 100 / 50) ** -2)


def test_statistic_trigger_needs_patience_and_ignores_missing_values():
    c = CooldownController(get_arm("handoff"), kind="hard", metric="eval/return",
                           threshold=3.0, patience=2)
    s = c.initial_state()
    s = c.observe(s, 10, 3.5)          # streak 1
    s = c.observe(s, 20, None)         # not reported: streak kept
    assert s["streak"] == 1 and s["handoff_at"] is None
    s = c.observe(s, 30, 2.0)          # miss: streak reset
    assert s["streak"] == 0
    s = c.observe(s, 40, 3.0)
    s = c.observe(s, 50, float("nan"))  # NaN is a miss
    assert s["streak"] == 0
    s = c.observe(c.observe(s, 60, 4.0), 70, 4.0)
    assert s["handoff_at"] == 70.0 and s["phase"] == "plain" and s["lambda"] == 0.0
    # Once handed off, the statistic no longer matters.
    assert c.observe(s, 80, -1e9) == s


def test_whichever_trigger_comes_first():
    c = CooldownController(get_arm("handoff"), kind="hard", handoff_steps=500,
                           metric="m", threshold=1.0)
    assert c.advance(c.initial_state(), 500)["handoff_at"] == 500.0
    assert c.observe(c.initial_state(), 20, 1.0)["handoff_at"] == 20.0


@pytest.mark.parametrize("kwargs, match", [
    ({"arm": "handoff", "kind": "constant", "handoff_steps": 1}, "must be 'hard' or 'anneal'"),
    ({"arm": "handoff", "kind": "hard"}, "handoff trigger"),
    ({"arm": "meta_mapg", "kind": "anneal", "handoff_steps": 1},
     "applies to arms that hand off only"),
    ({"arm": "handoff", "kind": "hard", "handoff_steps": -5}, "handoff_steps"),
    ({"arm": "handoff", "kind": "hard", "metric": "m"}, "handoff_threshold"),
    ({"arm": "handoff", "kind": "hard", "metric": "", "threshold": 1}, "handoff_metric"),
    ({"arm": "handoff", "kind": "hard", "handoff_steps": 1, "patience": 0}, "patience"),
    ({"arm": "handoff", "kind": "anneal", "handoff_steps": 1, "anneal_power": 1.0},
     "Proposition 3"),
    ({"arm": "handoff", "kind": "sometimes", "handoff_steps": 1}, "unknown"),
])
def test_bad_schedules_are_refused(kwargs, match):
    arm = get_arm(kwargs.pop("arm"))
    with pytest.raises(ScheduleError, match=match):
        CooldownController(arm, **kwargs)


def test_override_accepts_a_nonsummable_anneal():
    CooldownController(get_arm("handoff"), kind="anneal", handoff_steps=1,
                       anneal_power=0.5, allow_nonsummable=True)


def test_module_is_ray_free():
    import subprocess
    code = ("import sys, rllib_metamapg.metamapg.cooldown; "
            "sys.exit(1 if any(m == 'ray' or m.startswith('ray.') for m in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
