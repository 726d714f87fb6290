"""MATRL's RLlib learner: its special cases, the exact engine as oracle, and what it refuses.

* rho = 1 for every agent is PPO (``ippo``) bit for bit on the same batch, and
  rho = 0 is the ``il_pp`` arm (the meta-game's answer is the only difference).
* On one-shot Stag Hunt with tabular modules, the learner's meta-game payoffs are
  the exact engine's ``V_i(theta^sigma) - V_i(theta)`` at the learner's own
  theta / theta_hat, up to each player's positive advantage scale (which leaves
  the meta-game's equilibria unchanged): cosine >= 0.98 and the same rho.
* ``matrl_no_br`` ends at the parameter mixture; three agents and one remote
  learner train; the best-response optimizer survives a checkpoint.
"""

import copy

import numpy as np
import pytest
import torch

from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME

from rllib_metamapg import MATRLConfig, MetaMAPGConfig, TabularPPOTorchRLModule
from rllib_metamapg.matrl import metrics as M
from rllib_metamapg.matrl.meta_game import solve_2x2
from rllib_metamapg.tabular.games import get_game
from rllib_metamapg.tabular.policies import TabularPolicy
from rllib_metamapg.tabular.values import GameValues

AGENTS = ("player_0", "player_1")


def small(config, arm, batch=64, **training):
    return (config.environment("stag_hunt")
            .training(arm=arm, train_batch_size_per_learner=batch, minibatch_size=32,
                      num_epochs=2, **training)
            .env_runners(num_env_runners=0, num_envs_per_env_runner=8)
            .debugging(seed=5))


def update(learner, episodes, seed=0):
    # Minibatch shuffling draws from the global RNGs: the same draws for every learner.
    np.random.seed(seed)
    torch.manual_seed(seed)
    steps = sum(e.env_steps() for e in episodes)
    return learner.update(episodes=copy.deepcopy(episodes),
                          timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: steps},
                          num_epochs=2, minibatch_size=32, shuffle_batch_per_epoch=True)


def weights(learner):
    return {mid: {k: v.detach().clone() for k, v in learner.module[mid].state_dict().items()}
            for mid in AGENTS}


def assert_same(a, b):
    for mid in AGENTS:
        for k in a[mid]:
            torch.testing.assert_close(a[mid][k], b[mid][k], rtol=0, atol=0)


def test_rho_one_is_ppo_and_rho_zero_is_il_pp(ray_local):
    algos = {name: small(cfg, arm).build_algo() for name, cfg, arm in [
        ("ippo", MetaMAPGConfig(), "ippo"), ("rho1", MATRLConfig(), "matrl"),
        ("rho0", MATRLConfig(), "matrl"), ("il_pp", MATRLConfig(), "il_pp")]}
    try:
        learners = {k: a.learner_group._learner for k, a in algos.items()}
        assert_same(weights(learners["ippo"]), weights(learners["rho1"]))  # paired seeds
        learners["rho1"].solve_meta_game = lambda payoffs: [1.0, 1.0]
        learners["rho0"].solve_meta_game = lambda payoffs: [0.0, 0.0]
        for it in range(2):
            episodes = algos["ippo"].env_runner.sample(num_timesteps=64, random_actions=False)
            for learner in learners.values():
                update(learner, episodes, seed=it)
        assert_same(weights(learners["ippo"]), weights(learners["rho1"]))
        assert_same(weights(learners["rho0"]), weights(learners["il_pp"]))
        # ... and the best response did move il_pp away from PPO.
        w_ippo, w_pp = weights(learners["ippo"]), weights(learners["il_pp"])
        assert any(not torch.equal(w_ippo[m][k], w_pp[m][k]) for m in AGENTS for k in w_pp[m])
    finally:
        for a in algos.values():
            a.stop()


def tabular_spec(logits):
    return MultiRLModuleSpec(rl_module_specs={
        a: RLModuleSpec(module_class=TabularPPOTorchRLModule,
                        model_config={"init_logit": float(t)})
        for a, t in zip(AGENTS, logits)})


def exact_meta_game(theta, theta_hat):
    game = get_game("stag_hunt")
    values = GameValues(game, TabularPolicy.for_game(game))
    th, hat = torch.tensor(theta, dtype=torch.float64), torch.tensor(theta_hat,
                                                                    dtype=torch.float64)
    base = values(th)
    out = np.zeros((2, 2, 2))
    for s in np.ndindex(2, 2):
        joint = torch.where(torch.tensor(s, dtype=torch.bool), hat, th)
        out[(slice(None),) + s] = (values(joint) - base).numpy()
    return out


def test_meta_game_payoffs_match_the_exact_engine_on_stag_hunt(ray_local):
    theta = [0.4, -0.3]  # near the separatrix: both agents' payoffs have mixed signs
    config = (small(MATRLConfig(), "matrl", batch=4000, lr=0.05, vf_loss_coeff=0.0,
                    entropy_coeff=0.0, gamma=1.0, lambda_=1.0)
              .rl_module(rl_module_spec=tabular_spec(theta))
              .env_runners(num_envs_per_env_runner=32))
    algo = config.build_algo()
    try:
        learner = algo.learner_group._learner
        episodes = algo.env_runner.sample(num_timesteps=4000, random_actions=False)
        steps = sum(e.env_steps() for e in episodes)
        learner.update(episodes=episodes, timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: steps},
                       num_epochs=1, minibatch_size=steps + len(episodes))
        hat = [float(learner.last_theta_hat[a]["logits"][0, 0]) for a in AGENTS]
        assert all(abs(h - t) > 1e-3 for h, t in zip(hat, theta))
        want = exact_meta_game(theta, hat)
        got = learner.last_meta_payoffs
        assert got[0, 0, 0] == 0.0 and got[1, 0, 0] == 0.0
        for i in range(2):
            a, b = got[i].ravel(), want[i].ravel()
            cos = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
            assert cos >= 0.98, (i, a, b)
        rho = [float(r) for r in solve_2x2(want[0], want[1], "last")]
        assert [learner.last_rho[a] for a in AGENTS] == pytest.approx(rho, abs=0.05)
    finally:
        algo.stop()


def test_no_br_ends_at_the_parameter_mixture(ray_local):
    algo = small(MATRLConfig(), "matrl_no_br").build_algo()
    try:
        learner = algo.learner_group._learner
        before = weights(learner)
        episodes = algo.env_runner.sample(num_timesteps=64, random_actions=False)
        update(learner, episodes)
        after, hat = weights(learner), learner.last_theta_hat
        for mid in AGENTS:
            r = learner.last_rho[mid]
            for name, p in hat[mid].items():
                torch.testing.assert_close(after[mid][name],
                                           r * before[mid][name] + (1 - r) * p)
    finally:
        algo.stop()


def test_three_agents_on_one_remote_learner(ray_local):
    rng = np.random.default_rng(0)
    game = {"payoffs": rng.uniform(0, 4, (3, 2, 2, 2)).round(2).tolist()}
    config = (MATRLConfig().environment("matrix_game", env_config={"game": game, "rounds": 2})
              .training(arm="matrl", train_batch_size_per_learner=60, minibatch_size=30,
                        num_epochs=1, br_iters=2)
              .learners(num_learners=1)
              .env_runners(num_env_runners=0, num_envs_per_env_runner=6).debugging(seed=0))
    algo = config.build_algo()
    try:
        result = algo.train()
    finally:
        algo.stop()
    for mid in ("player_0", "player_1", "player_2"):
        out = result["learners"][mid]
        assert 0.0 <= out[M.RHO] <= 1.0
        keys = {k for k in out if k.startswith(M.META_PAYOFF_PREFIX)}
        assert len(keys) == 8 and out[M.meta_payoff_key((0, 0, 0))] == 0.0


def test_best_response_optimizer_state_survives_get_and_set_state(ray_local):
    algo = small(MATRLConfig(), "matrl").build_algo()
    other = small(MATRLConfig(), "matrl").build_algo()
    try:
        learner = algo.learner_group._learner
        update(learner, algo.env_runner.sample(num_timesteps=64, random_actions=False))
        state = learner.get_state()
        assert set(state["matrl_br_optimizers"]) == set(AGENTS)
        target = other.learner_group._learner
        target.set_state(state)
        for mid in AGENTS:
            a = learner._br_optimizers[mid].state_dict()["state"]
            b = target._br_optimizers[mid].state_dict()["state"]
            for k in a:
                torch.testing.assert_close(a[k]["exp_avg"], b[k]["exp_avg"])
    finally:
        algo.stop()
        other.stop()


@pytest.mark.parametrize("training, field", [
    ({"arm": "peer_only"}, "belongs to method 'meta_mapg'"),
    ({"arm": "nope"}, "arm='nope' is unknown"),
    ({"meta_choice": "best"}, "meta_choice='best'"),
    ({"br_clip": 1.5}, "br_clip=1.5"),
    ({"br_clip": float("nan")}, "br_clip=nan"),
    ({"br_iters": 0}, "br_iters=0 with arm='matrl'"),
    ({"br_lr": -1.0}, "br_lr=-1.0"),
    ({"br_objective": "half"}, "br_objective='half'"),
    ({"mixture_space": "log"}, "mixture_space='log'"),
    ({"br_start": "middle"}, "br_start='middle'"),
    ({"br_start": "current"}, "br_start='current' with br_objective='correction'"),
    ({"br_weight": "inverse"}, "br_weight='inverse'"),
    ({"br_minibatch_size": 0}, "br_minibatch_size=0"),
    ({"lr": float("nan")}, "lr=nan"),
])
def test_config_refuses_bad_settings_naming_the_field(training, field):
    config = MATRLConfig().environment("stag_hunt").training(**training)
    with pytest.raises(ValueError, match=field.replace("(", r"\(").replace("[", r"\[")):
        config.validate()


def test_config_refuses_several_learners():
    config = MATRLConfig().environment("stag_hunt").learners(num_learners=2)
    with pytest.raises(ValueError, match="num_learners=2: MATRL runs on 0 or 1"):
        config.validate()


def test_each_paper_or_code_choice_changes_the_update(ray_local):
    # rho fixed in the interior, so the mixture space matters too; same batch, same seed.
    variants = {"default": {}, "parameter_mixture": {"mixture_space": "parameter"},
                "full": {"br_objective": "full"},
                "from_current": {"br_objective": "full", "br_start": "current"},
                "paper_ratio": {"br_weight": "current_over_mixture"}}
    algos = {k: small(MATRLConfig(), "matrl", **v).build_algo() for k, v in variants.items()}
    try:
        episodes = algos["default"].env_runner.sample(num_timesteps=64, random_actions=False)
        out = {}
        for k, algo in algos.items():
            learner = algo.learner_group._learner
            learner.solve_meta_game = lambda payoffs: [0.5, 0.5]
            update(learner, episodes)
            out[k] = torch.cat([p.reshape(-1) for p in weights(learner)["player_0"].values()])
        names = list(out)
        for a in range(len(names)):
            for b in range(a + 1, len(names)):
                assert not torch.equal(out[names[a]], out[names[b]]), (names[a], names[b])
    finally:
        for algo in algos.values():
            algo.stop()
