"""MAPPO: the centralized critic's input is every agent's observation at the same env
step, the actor starts from ippo's weights for the same seed, and with the critic
restricted to the own observation MAPPO trains exactly as ippo."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from rllib_metamapg.mappo.critic_observations import CRITIC_OBS
from rllib_metamapg.rllib_base.algorithm import arm_config

SMALL = {"num_env_runners": 0, "num_envs_per_env_runner": 2,
         "train_batch_size_per_learner": 24, "minibatch_size": 12, "num_epochs": 2,
         "rollout_fragment_length": 12, "seed": 3}


class Labelled(MultiAgentEnv):
    """Two agents that observe different things: [agent index, step, 1]; 3 steps."""

    def __init__(self, config=None):
        super().__init__()
        self.agents = self.possible_agents = ["a", "b"]
        box = gym.spaces.Box(-10.0, 10.0, (3,), np.float32)
        self.observation_spaces = {a: box for a in self.agents}
        self.action_spaces = {a: gym.spaces.Discrete(2) for a in self.agents}
        self.t = 0

    def _obs(self):
        return {a: np.array([i, self.t, 1.0], np.float32) for i, a in enumerate(self.agents)}

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return self._obs(), {}

    def step(self, action_dict):
        self.t += 1
        rewards = {a: float(action_dict["a"] == action_dict["b"]) for a in self.agents}
        done = self.t >= 3
        return self._obs(), rewards, {"__all__": done}, {"__all__": False}, {}


def _params(algo, module):
    return {k: v.detach().clone() for k, v in algo.learner_group._learner.module[module]
            .named_parameters()}


@pytest.mark.slow
def test_the_critic_input_holds_every_agents_observation_at_that_step(ray_local):
    algo = arm_config("mappo", Labelled, SMALL).build_algo()
    try:
        learner = algo.learner_group._learner
        episodes = algo.env_runner.sample(num_timesteps=24, random_actions=True)
        batch = learner._learner_connector(rl_module=learner.module, batch={},
                                           episodes=episodes, shared_data={})
        for k, mid in enumerate(["a", "b"]):
            own, critic = batch[mid]["obs"].numpy(), batch[mid][CRITIC_OBS].numpy()
            assert critic.shape == (len(own), 6)
            assert np.array_equal(critic[:, 3 * k:3 * k + 3], own)  # its own, in its slot
            other = critic[:, 3 * (1 - k):3 * (1 - k) + 3]
            assert np.all(other[:, 0] == 1 - k)  # the other agent's observation ...
            assert np.array_equal(other[:, 1:], own[:, 1:])  # ... at the same step
        critic_in = learner.module["a"].encoder.critic_encoder.net.mlp[0].in_features
        actor_in = learner.module["a"].encoder.actor_encoder.net.mlp[0].in_features
        assert (critic_in, actor_in) == (6, 3)
        algo.train()  # and it trains on it
    finally:
        algo.stop()


@pytest.mark.slow
def test_same_seed_gives_ippos_actor_and_value_head(ray_local):
    algos = {arm: arm_config(arm, "stag_hunt", SMALL).build_algo() for arm in ("ippo", "mappo")}
    try:
        for mid in ("player_0", "player_1"):
            ippo, mappo = _params(algos["ippo"], mid), _params(algos["mappo"], mid)
            assert set(ippo) == set(mappo)
            same = [k for k in ippo if ippo[k].shape == mappo[k].shape
                    and torch.equal(ippo[k], mappo[k])]
            assert set(ippo) - set(same) == {k for k in ippo if "critic_encoder" in k}
            assert any(k.startswith("pi") for k in same) and any("actor" in k for k in same)
            wide = mappo["encoder.critic_encoder.net.mlp.0.weight"]
            assert wide.shape[1] == 2 * ippo["encoder.critic_encoder.net.mlp.0.weight"].shape[1]
    finally:
        for algo in algos.values():
            algo.stop()


def _trained(config, iterations=3):
    """Weights after ``iterations``; built and trained alone, since RLlib seeds torch's and
    NumPy's global RNGs when it builds an algorithm and draws from them while training."""
    algo = config.build_algo()
    try:
        for _ in range(iterations):
            algo.train()
        return {mid: _params(algo, mid) for mid in ("player_0", "player_1")}
    finally:
        algo.stop()


@pytest.mark.slow
def test_mappo_with_its_own_observation_as_critic_input_trains_as_ippo(ray_local):
    ippo = _trained(arm_config("ippo", "stag_hunt", SMALL))
    own = _trained(arm_config("mappo", "stag_hunt", SMALL).training(critic_input="own"))
    joint = _trained(arm_config("mappo", "stag_hunt", SMALL))
    start = _trained(arm_config("ippo", "stag_hunt", SMALL), iterations=0)
    for mid in ("player_0", "player_1"):
        for name in ippo[mid]:
            assert torch.equal(ippo[mid][name], own[mid][name]), (mid, name)
        # They did train, and the joint critic changes the actor's updates.
        assert not torch.equal(ippo[mid]["pi.net.mlp.0.weight"], start[mid]["pi.net.mlp.0.weight"])
        assert not torch.equal(ippo[mid]["pi.net.mlp.0.weight"], joint[mid]["pi.net.mlp.0.weight"])


@pytest.mark.slow
@pytest.mark.long  # make test-long (CI runs it): a Tune sweep of 6 trials, ~30 s
def test_a_paired_sweep_with_ippo_and_ma_props_pairs_mappo_by_its_actors(tmp_path, monkeypatch):
    import json

    import ray

    from rllib_metamapg.cli import main

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert not ray.is_initialized()
    arms = ["ippo", "mappo", "mappo+ma_props"]
    assert main(["sweep", "--env", "stag_hunt", "--arms", ",".join(arms), "--seeds", "0-1",
                 "--smoke", "--storage-path", str(tmp_path), "--name", "m",
                 "--max-concurrent", "2", "--quiet", "--progress-every", "0",
                 "--report"]) == 0
    init = {}
    for result in (tmp_path / "m").glob("*/result.json"):
        params = json.loads((result.parent / "params.json").read_text())
        row = json.loads(result.read_text().splitlines()[-1])
        init[(params["arm"], params["seed"])] = row["metamapg_init"]
        if params["arm"] == "mappo+ma_props":
            assert row["env_runners"]["sampler_behaviour_updates"] > 0
    assert len(init) == 6
    for seed in (0, 1):
        assert len({init[(a, seed)]["actor_sha256"] for a in arms}) == 1
        # The whole weights differ (MAPPO's critic is wider): paired by the actors.
        assert init[("ippo", seed)]["weights_sha256"] != init[("mappo", seed)]["weights_sha256"]
    (result,) = json.loads((tmp_path / "m" / "report" / "report.json").read_text())["results"]
    assert result["pairing_broken"] == [] and result["tests_vs_reference"]["mappo"]["pairs"] == 2
