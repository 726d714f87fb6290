"""PROPS and MA-PROPS in RLlib's env runner: the behaviour network, the connector, the
refusals, and every 2-agent discrete env composed with the method arms."""

import copy
from collections import defaultdict
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from rllib_metamapg import registry
from rllib_metamapg.samplers import metrics as M
from rllib_metamapg.samplers.behaviour import BehaviourSettings, clipped_objective_grad
from rllib_metamapg.samplers.behaviour_net import BehaviourGroup, clipped_loss

ROOT = Path(__file__).resolve().parents[1]
AGENTS = ["player_0", "player_1"]


def _filled_group(num_actions, hidden, settings, states=3, samples=37, seed=0):
    """A group whose buffer holds ``samples`` draws over ``states`` distinct states."""
    rng = np.random.default_rng(seed)
    group = BehaviourGroup(num_actions, 4, dataclass_replace(settings, every=10**9),
                           hidden=hidden, seed=seed)
    feats = rng.normal(size=(states, 4))
    logits = [rng.normal(size=(states, a)) for a in num_actions]
    logp = [z - np.log(np.exp(z).sum(-1, keepdims=True)) for z in logits]
    target = group.joint_logp(logp)
    for _ in range(samples):
        rows = rng.integers(0, states, size=1)
        group.draw(feats[rows], target[rows])
    group.settings = settings
    # A non-zero hidden layer and Adam state, as after earlier updates.
    group.params += 0.1 * rng.normal(size=group.params.shape)
    group.m += 0.01 * rng.normal(size=group.m.shape)
    group.v += 0.01 * np.abs(rng.normal(size=group.v.shape))
    group.t[0] = 5
    return group


def dataclass_replace(settings, **kw):
    import dataclasses

    return dataclasses.replace(settings, **kw)


@pytest.mark.parametrize("hidden", [0, 8])
@pytest.mark.parametrize("settings", [
    BehaviourSettings(lr=0.05, epochs=3, minibatches=3, kl_cutoff=None, grad_clip=0.5),
    BehaviourSettings(lr=0.5, epochs=4, minibatches=2, kl_cutoff=0.002, grad_clip=None),
    BehaviourSettings(lr=0.3, epochs=2, minibatches=5, clip=0.1, optimizer="sgd"),
], ids=["adam-clip", "adam-klstop", "sgd"])
def test_compiled_update_equals_autograd_reference(hidden, settings):
    # Hand-written backprop over distinct states == autograd per sample, Adam and the
    # gradient clip as torch's, the same KL stop -- on a 2x3 joint action space.
    group = _filled_group((2, 3), hidden, settings)
    ref = copy.deepcopy(group)
    orders = group._orders(len(group.action_of))
    got = group.update(orders)
    want = ref.update_reference(orders)
    assert got[0] == want[0]
    assert got[1] == pytest.approx(want[1], rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(group.params, ref.params, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(group.m, ref.m, rtol=1e-9, atol=1e-14)
    if settings.kl_cutoff == 0.002:
        assert got[0] < settings.epochs  # the stop was exercised


def test_delta_is_zero_after_a_clear_so_behaviour_equals_target():
    group = _filled_group((2, 2), 16, BehaviourSettings())
    group.update()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 4))
    target = group.joint_logp([np.log(np.full((5, 2), 0.5)), np.log([[0.3, 0.7]] * 5)])
    assert np.abs(group.delta(x)).max() > 0  # the update moved it
    group.clear()
    assert np.all(group.delta(x) == 0.0)
    np.testing.assert_allclose(group.behaviour_logp(x, target), target, atol=1e-15)
    assert group.action_of == [] and group.states == 0


def test_clipped_loss_gradient_is_the_tabular_closed_form():
    # The RLlib loss and the tabular engine's closed-form ascent direction agree.
    gen = torch.Generator().manual_seed(0)
    target = torch.log_softmax(torch.randn(1, 6, generator=gen, dtype=torch.float64), -1)
    delta = (0.8 * torch.randn(1, 6, generator=gen, dtype=torch.float64)).requires_grad_()
    actions = torch.tensor([0, 0, 1, 3, 3, 3, 5, 2])
    loss = clipped_loss(target.expand(8, 6), delta.expand(8, 6), actions, 0.2)
    (grad,) = torch.autograd.grad(loss, delta)
    counts = torch.bincount(actions, minlength=6).to(torch.float64).unsqueeze(0)
    ascent, objective = clipped_objective_grad(target, delta.detach(), counts, 0.2)
    r = torch.exp(torch.log_softmax(target + delta.detach(), -1) - target)
    assert ((r < 0.8) | (r > 1.2)).any()  # some ratios are clipped
    torch.testing.assert_close(-grad, ascent)
    assert loss.item() == pytest.approx(-objective.item())


def test_greedy_limit_draws_the_most_under_sampled_joint_action():
    settings = BehaviourSettings(lr=1e4, epochs=1, minibatches=1, optimizer="sgd",
                                 kl_cutoff=None, grad_clip=None)
    group = BehaviourGroup((2, 3), 1, settings, hidden=0, seed=0)
    target = group.joint_logp([np.log([[0.3, 0.7]]), np.log([[0.2, 0.5, 0.3]])])
    probs = np.exp(target[0])
    x = np.ones((1, 1))
    counts = np.zeros(6)
    for n in range(1, 61):
        if n > 1:  # the next draw is the most under-sampled joint action
            deficit = probs * (n - 1) - counts
            pick = np.argmax(np.exp(group.behaviour_logp(x, target))[0])
            assert deficit[pick] == pytest.approx(deficit.max(), abs=1e-9)
        counts[group.draw(x, target)[0]] += 1
        assert 0.5 * np.abs(counts / n - probs).sum() <= 6 / (2 * n) + 1e-12


# ------------------------------------------------------------------ refusals (no Ray)
class _BoxActions(gym.Env):
    pass


def _ma_env(action_space):
    from ray.rllib.env.multi_agent_env import MultiAgentEnv

    class Env(MultiAgentEnv):
        def __init__(self, config=None):
            super().__init__()
            self.possible_agents = self.agents = list(AGENTS)
            self.observation_spaces = {a: gym.spaces.Box(0, 1, (2,)) for a in AGENTS}
            self.action_spaces = {a: action_space for a in AGENTS}

    return Env


@pytest.mark.parametrize("change, match", [
    (dict(env=_ma_env(gym.spaces.Box(-1, 1, (2,)))), "needs discrete actions"),
    (dict(env=_ma_env(gym.spaces.Discrete(100))), "10000 joint actions .* limit of 4096"),
    (dict(num_env_runners=2), "each env runner keeps its own buffer"),
    (dict(explore=False), "explore=False"),
    (dict(behaviour={"lr": 0.0}), "behaviour lr=0.0"),
    (dict(behaviour={"hiddens": [64]}), r"unknown key\(s\) \['hiddens'\]"),
    (dict(sampler="nope"), "sampler='nope' is unknown"),
    (dict(sampler="on_policy", behaviour={"lr": 0.1}), "has no effect"),
    (dict(shared=True), "needs one module per agent"),
])
def test_what_cannot_work_is_refused_by_validate(change, match):
    from rllib_metamapg import MetaMAPGConfig

    config = MetaMAPGConfig().environment(change.pop("env", "stag_hunt")).training(
        arm="ippo", sampler=change.pop("sampler", "ma_props"),
        behaviour=change.pop("behaviour", {})).env_runners(num_env_runners=0)
    if change.pop("shared", False):
        config.multi_agent(policies={"shared"}, policy_mapping_fn=lambda aid, *a, **k: "shared")
    if "num_env_runners" in change:
        config.env_runners(num_env_runners=change.pop("num_env_runners"))
    if "explore" in change:
        config.env_runners(explore=change.pop("explore"))
    with pytest.raises(ValueError, match=match):
        config.validate()


def test_props_takes_a_joint_space_ma_props_refuses_and_runners_can_opt_in():
    from rllib_metamapg import MetaMAPGConfig

    big = _ma_env(gym.spaces.Discrete(100))
    (MetaMAPGConfig().environment(big).env_runners(num_env_runners=1)
     .training(arm="ippo", sampler="props").validate())
    (MetaMAPGConfig().environment("stag_hunt").env_runners(num_env_runners=2)
     .training(arm="ippo", sampler="ma_props", behaviour={"per_runner_buffers": True})
     .validate())


def test_compositions_are_arms_in_both_engines_and_refused_where_unimplemented():
    arm = registry.get_arm("peer_only+ma_props")
    assert (arm.name, arm.method, arm.sampler) == ("peer_only+ma_props", "meta_mapg",
                                                   "ma_props")
    assert registry.get_arm("pg+on_policy").name == "ippo"
    assert registry.get_arm("matrl+props").method == "matrl"
    with pytest.raises(registry.RegistryError, match="sampler='nope' is unknown"):
        registry.get_arm("ippo+nope")
    with pytest.raises(registry.RegistryError, match="composition is"):
        registry.get_arm("ippo+ma_props+props")
    assert registry.arm_for_engine("ippo+ma_props", "tabular").sampler == "ma_props"
    registry.register_sampler(registry.SamplerSpec("rl_only", "test", engines=("rllib",)))
    try:
        with pytest.raises(registry.RegistryError,
                           match="arm='ippo\\+rl_only': sampler='rl_only' is implemented in"):
            registry.arm_for_engine("ippo+rl_only", "tabular")
    finally:
        registry._REGISTRY.samplers.pop("rl_only")
    from rllib_metamapg.tuned_examples import experiment

    _, exp = experiment("stag_hunt", "peer_only+ma_props", smoke=True)
    assert exp["run"] == "MetaMAPG" and exp["config"]["sampler"] == "ma_props"
    assert exp["config"]["arm"] == "peer_only"


# ------------------------------------------------------------------ RLlib
def _softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


def batch_sampling_error(episodes, agents=AGENTS):
    """Joint TV of a batch against its target, from the episodes alone (an independent
    second implementation of the connector's tally); also the worst |ACTION_LOGP -
    log pi_theta(a)| over the batch."""
    counts, probs = defaultdict(float), defaultdict(float)
    n, logp_err, states = 0, 0.0, set()
    for ep in episodes:
        sas = [ep.agent_episodes[a] for a in agents]
        steps = len(sas[0])
        obs = [sa.get_observations(slice(0, steps)) for sa in sas]
        acts = [sa.get_actions(slice(0, steps)) for sa in sas]
        dist = [sa.get_extra_model_outputs("action_dist_inputs", slice(0, steps)) for sa in sas]
        logp = [sa.get_extra_model_outputs("action_logp", slice(0, steps)) for sa in sas]
        for t in range(steps):
            key = b"".join(np.asarray(o[t]).tobytes() for o in obs)
            states.add(key)
            p = [_softmax(d[t]) for d in dist]
            for i in range(len(agents)):
                logp_err = max(logp_err, abs(np.log(p[i][acts[i][t]]) - logp[i][t]))
            counts[key, int(acts[0][t]), int(acts[1][t])] += 1
            for a0 in range(len(p[0])):
                for a1 in range(len(p[1])):
                    probs[key, a0, a1] += p[0][a0] * p[1][a1]
            n += 1
    tv = 0.5 * sum(abs(counts[k] - probs[k]) for k in set(counts) | set(probs)) / n
    return tv, logp_err, n


def _frozen(arm, env="stag_hunt"):
    from rllib_metamapg.rllib_base.algorithm import arm_config

    return arm_config(arm, env, {"num_env_runners": 0, "num_envs_per_env_runner": 4,
                                 "train_batch_size_per_learner": 64, "minibatch_size": 64,
                                 "num_epochs": 1, "lr": 0.0, "seed": 3}).build_algo()


def test_frozen_target_ma_props_batches_are_closer_to_the_target(ray_local):
    from ray.rllib.core import COMPONENT_RL_MODULE
    from ray.rllib.utils.metrics import WEIGHTS_SEQ_NO

    means = {}
    for arm in ("ippo", "ippo+ma_props"):
        algo = _frozen(arm)
        runner, tvs = algo.env_runner, []
        weights = algo.learner_group.get_weights()
        try:
            for b in range(20):
                episodes = runner.sample(num_timesteps=64, explore=True)
                tv, logp_err, n = batch_sampling_error(episodes)
                assert n == 64 and logp_err < 1e-5  # ACTION_LOGP is the target's
                logged = runner.get_metrics().get(M.JOINT_TV)
                if arm == "ippo":
                    assert logged is None
                else:  # the connector's own tally agrees with the episodes
                    assert logged.peek() == pytest.approx(tv, abs=1e-9)
                tvs.append(tv)
                # lr = 0: the same weights again, a new sequence number (a sync).
                runner.set_state({COMPONENT_RL_MODULE: weights, WEIGHTS_SEQ_NO: b + 10})
        finally:
            algo.stop()
        means[arm] = float(np.mean(tvs))
    # Measured: 0.077 on-policy, 0.032 MA-PROPS (seed 3).
    assert means["ippo+ma_props"] < 0.6 * means["ippo"], means


def test_buffer_resets_when_new_weights_arrive_and_only_then(ray_local):
    from ray.rllib.core import COMPONENT_RL_MODULE
    from ray.rllib.utils.metrics import WEIGHTS_SEQ_NO

    from rllib_metamapg.samplers.env_runner import behaviour_pieces

    algo = _frozen("ippo+props")
    try:
        for _ in range(2):  # each iteration's buffer is that iteration's batch
            result = algo.train()
            assert result["env_runners"][M.BUFFER_SIZE] == 64
            assert result["env_runners"][M.BEHAVIOUR_UPDATES] > 0
        runner = algo.env_runner
        (piece,) = behaviour_pieces(runner._module_to_env)
        # The sync at the end of the last iteration emptied it: only the new samples.
        runner.sample(num_timesteps=16, explore=True)
        assert piece.tally.n == 16 and len(piece.groups[0].action_of) == 16
        weights, seq = algo.learner_group.get_weights(), runner._weights_seq_no
        runner.set_state({COMPONENT_RL_MODULE: weights, WEIGHTS_SEQ_NO: seq})  # not new
        assert piece.tally.n == 16
        runner.set_state({COMPONENT_RL_MODULE: weights, WEIGHTS_SEQ_NO: seq + 1})
        assert piece.tally.n == 0 and all(g.action_of == [] for g in piece.groups)
        # Greedy evaluation leaves the actions to the target policy.
        runner.sample(num_episodes=2, explore=False)
        assert piece.tally.n == 0
    finally:
        algo.stop()


TWO_AGENT_DISCRETE = ["stag_hunt", "ipd", "pettingzoo_ipd", "mpe_simple_reference",
                      "mpe_simple_speaker_listener", "overcooked_forced_coordination",
                      "meltingpot_pd_in_the_matrix"]


@pytest.mark.parametrize("arm", ["ippo+ma_props", "peer_only+ma_props"])
@pytest.mark.parametrize("env", TWO_AGENT_DISCRETE)
def test_every_two_agent_discrete_env_trains_with_ma_props(ray_local, env, arm):
    from env_support import skip_unless_installed

    from rllib_metamapg import rllib_cli
    from rllib_metamapg.tuned_examples import experiment

    skip_unless_installed(env)
    name, exp = experiment(env, arm, smoke=True)
    ((_, config, _),) = rllib_cli.prepare({name: exp}, {}, f"{env}/{arm}")
    config = config.evaluation(evaluation_interval=None)
    assert config.sampler == "ma_props"
    algo = config.build_algo()
    try:
        result = algo.train()
    finally:
        algo.stop()
    runners = result["env_runners"]
    assert runners[M.BEHAVIOUR_UPDATES] > 0 and runners[M.BUFFER_SIZE] > 0
    assert 0.0 <= runners[M.KL_AT_STOP] and np.isfinite(runners[M.BEHAVIOUR_EPOCHS])
    for module in config.policies:
        assert np.isfinite(result["learners"][module]["total_loss"])
        if arm.startswith("peer_only"):
            assert result["learners"][module]["metamapg_correction_norm"] > 0


@pytest.mark.parametrize("arm", ["matrl+ma_props", "meta_mapg+props"])
def test_matrl_and_props_compose_too(ray_local, arm):
    algo = _frozen(arm)
    try:
        result = algo.train()
    finally:
        algo.stop()
    assert result["env_runners"][M.BEHAVIOUR_UPDATES] > 0
    assert set(result["env_runners"][M.AGENT_TV]) == set(AGENTS)


def test_a_sweep_of_one_class_with_a_composition_builds_each_arm_from_its_table():
    from rllib_metamapg.sweep.plan import ARM_CONFIGS_KEY, SweepSpec, plan_sweep
    from rllib_metamapg.sweep.trainable import sweep_trainable
    from rllib_metamapg.sweep.trainable import PairedArms, arm_algorithm_config

    arms = ["ippo", "ippo+ma_props"]
    plan = plan_sweep(SweepSpec(env="stag_hunt", arms=arms, seeds=[0], smoke=True))
    assert sweep_trainable(arms) is PairedArms  # the trial label is not an arm setting
    table = plan.param_space[ARM_CONFIGS_KEY]
    trial = {k: v for k, v in plan.param_space.items() if k not in ("arm", "seed")}
    for arm, sampler in zip(arms, ["on_policy", "ma_props"]):
        config = arm_algorithm_config({**trial, "arm": arm, "seed": 0})
        assert (config.arm, config.sampler) == ("ippo", sampler)
        assert table[arm]["config"].get("sampler", "on_policy") == sampler
