import pytest

from rllib_metamapg.metamapg.method import switches
from rllib_metamapg.registry import RegistryError, get_arm, parse_arms
from rllib_metamapg.schedules import LambdaSchedule, ScheduleError, StepSize, check_summable


def test_step_size_paper_schedule():
    s = StepSize(0.9, power=0.24, offset=10)
    assert s(0) == pytest.approx(0.9 / 10 ** 0.24)
    assert StepSize(0.1)(1000) == 0.1


def test_lambda_schedules():
    hard = LambdaSchedule("hard", handoff_steps=100)
    assert hard(99) == 1.0 and hard(100) == 0.0
    ann = LambdaSchedule("anneal", handoff_steps=100, power=0.7, scale=30)
    assert ann(100) == 1.0
    assert ann(130) == pytest.approx(2 ** -0.7)
    assert LambdaSchedule()(10 ** 6) == 1.0


def test_paper_cooldown_is_refused_as_non_summable():
    # alpha_n ~ n^-0.24 with lambda_n ~ n^-0.7: p + q = 0.94 <= 1.
    ann = LambdaSchedule("anneal", handoff_steps=100, power=0.7, scale=30)
    with pytest.raises(ScheduleError, match="anneal_power=0.7.*Proposition 3.*> 0.76"):
        check_summable(0.24, ann)
    check_summable(0.24, ann, allow_nonsummable=True)
    check_summable(0.24, LambdaSchedule("anneal", handoff_steps=100, power=0.8, scale=30))
    check_summable(0.0, LambdaSchedule("hard", handoff_steps=5))
    with pytest.raises(ScheduleError, match="constant step size"):
        check_summable(0.0, LambdaSchedule("anneal", handoff_steps=5, power=1.0))


@pytest.mark.parametrize("kwargs, match", [
    (dict(kind="sometimes"), "lambda_schedule='sometimes'"),
    (dict(kind="hard"), "needs a handoff"),
    (dict(kind="hard", handoff_steps=-1), "handoff_steps=-1"),
    (dict(kind="anneal", handoff_steps=1, power=0), "anneal_power=0"),
    (dict(kind="anneal", handoff_steps=1, scale=0), "anneal_scale=0"),
    (dict(kind="hard", handoff_steps=float("nan")), "handoff_steps=nan"),
])
def test_bad_lambda_schedules(kwargs, match):
    with pytest.raises(ScheduleError, match=match):
        LambdaSchedule(**kwargs)


@pytest.mark.parametrize("kwargs, match", [
    (dict(alpha0=0), "lr=0"), (dict(alpha0=1, power=-1), "lr_power=-1"),
    (dict(alpha0=1, power=0.5, offset=0), "lr_offset=0"),
])
def test_bad_step_sizes(kwargs, match):
    with pytest.raises(ScheduleError, match=match):
        StepSize(**kwargs)


def test_arms():
    assert get_arm("pg").name == "ippo" and get_arm("full").name == "meta_mapg"
    assert switches("handoff").cooldown and switches("handoff").peer
    assert not switches("own_only").peer
    assert get_arm("handoff").handoff and not get_arm("meta_mapg").handoff
    with pytest.raises(RegistryError, match="arm='sarsa'"):
        get_arm("sarsa")
    with pytest.raises(RegistryError, match="more than once"):
        parse_arms(["pg", "ippo"])
