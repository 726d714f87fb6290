"""``critic_lr``: the critic's own Adam, its gradients clipped apart from the actor's."""

import pytest
import torch

from rllib_metamapg import MATRLConfig, MetaMAPGConfig
from rllib_metamapg.rllib_base.torch.learner import CRITIC_OPTIMIZER
from rllib_metamapg.rllib_base.torch.module_params import policy_params

from test_metamapg_rllib import tabular_spec, tiny

MODULES = ("player_0", "player_1")


@pytest.mark.parametrize("settings, match", [
    ({"critic_lr": float("nan")}, "critic_lr=nan"),
    ({"critic_lr": -1e-3}, "critic_lr=-0.001"),
    ({"critic_lr": "fast"}, "critic_lr='fast'"),
])
def test_bad_critic_lr_is_refused_naming_the_field(settings, match):
    for config in (MetaMAPGConfig(), MATRLConfig()):
        with pytest.raises(ValueError, match=match):
            config.environment("stag_hunt").training(**settings).validate()


def test_critic_lr_with_shared_layers_is_refused_before_building():
    config = (MetaMAPGConfig().environment("stag_hunt").training(critic_lr=1e-3)
              .rl_module(model_config={"vf_share_layers": True}))
    with pytest.raises(ValueError, match="vf_share_layers"):
        config.validate()


def _params(algo):
    """``{module: (actor {name: tensor}, critic {name: tensor})}`` copies, from the
    learner (the env runner's inference-only modules have no critic)."""
    out = {}
    for mid in MODULES:
        module = algo.learner_group._learner.module[mid].unwrapped()
        actor = set(policy_params(module))
        state = {n: p.detach().clone() for n, p in module.named_parameters()}
        out[mid] = ({n: v for n, v in state.items() if n in actor},
                    {n: v for n, v in state.items() if n not in actor})
    return out


def _moved(before, after):
    """(actor moved, critic moved), over every module."""
    return tuple(any(not torch.equal(before[m][k][n], after[m][k][n])
                     for m in MODULES for n in before[m][k]) for k in (0, 1))


def _one_update(**training):
    algo = tiny("ippo", grad_clip=0.5, **training).build_algo()
    try:
        before = _params(algo)
        algo.train()
        return algo, before, _params(algo)
    finally:
        algo.stop()


@pytest.mark.parametrize("lr, critic_lr, moved", [
    (0.0, 1e-3, (False, True)),   # the critic learns at its own rate ...
    (1e-3, 0.0, (True, False)),   # ... and the actor at lr
    (0.0, None, (False, False)),  # unset: one optimizer at lr for both
])
def test_each_optimizer_trains_its_own_parameters_at_its_own_rate(ray_local, lr, critic_lr,
                                                                   moved):
    algo, before, after = _one_update(lr=lr, critic_lr=critic_lr)
    assert _moved(before, after) == moved
    learner = algo.learner_group._learner
    names = [name for name, _ in learner.get_optimizers_for_module(MODULES[0])]
    assert names == (["default_optimizer"] if critic_lr is None
                     else ["default_optimizer", CRITIC_OPTIMIZER])


def test_the_value_loss_no_longer_shrinks_the_actors_clipped_step(ray_local):
    """With one optimizer, RLlib clips actor and critic by one global norm, so the
    value loss's scale changes the actor's step; with ``critic_lr`` it does not."""
    def actor_after(vf_loss_coeff, critic_lr):
        _, _, after = _one_update(vf_loss_coeff=vf_loss_coeff, critic_lr=critic_lr,
                                  num_epochs=2)
        return {m: after[m][0] for m in MODULES}

    def same(a, b):
        return all(torch.equal(a[m][n], b[m][n]) for m in MODULES for n in a[m])

    assert same(actor_after(1.0, 1e-3), actor_after(1000.0, 1e-3))
    assert not same(actor_after(1.0, None), actor_after(1000.0, None))


def test_a_module_without_a_separate_critic_is_refused_naming_critic_lr(ray_local):
    config = tiny("ippo", critic_lr=1e-3).rl_module(rl_module_spec=tabular_spec())
    with pytest.raises(Exception, match="critic_lr is set, but module"):
        config.build_algo()


def test_both_optimizers_survive_a_checkpoint(ray_local, tmp_path):
    from ray.rllib.algorithms.algorithm import Algorithm

    algo = tiny("ippo", critic_lr=1e-3).build_algo()
    try:
        algo.train()
        path = algo.save_to_path(str(tmp_path / "ckpt"))
        want = {name: opt.state_dict() for name, opt in
                algo.learner_group._learner.get_optimizers_for_module(MODULES[0])}
    finally:
        algo.stop()
    restored = Algorithm.from_checkpoint(path)
    try:
        got = {name: opt.state_dict() for name, opt in
               restored.learner_group._learner.get_optimizers_for_module(MODULES[0])}
        assert set(got) == {"default_optimizer", CRITIC_OPTIMIZER}
        for name in got:
            assert got[name]["param_groups"][0]["lr"] == want[name]["param_groups"][0]["lr"]
            steps = [float(s["step"]) for s in got[name]["state"].values()]
            assert steps and all(s == float(list(want[name]["state"].values())[0]["step"])
                                 for s in steps)
        restored.train()
    finally:
        restored.stop()


def test_a_learner_that_would_ignore_critic_lr_is_refused_before_building():
    """A learner not built on the base (here RLlib's own PPO learner) would train the
    critic at lr while every other arm uses critic_lr: an unequal comparison."""
    from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner

    for config in (MetaMAPGConfig(), MATRLConfig()):
        config.environment("stag_hunt").training(learner_class=PPOTorchLearner)
        config.validate()  # without critic_lr RLlib's learner is fine
        config.training(critic_lr=1e-3)
        with pytest.raises(ValueError, match="critic_lr=0.001 is set, but the learner "
                                             "PPOTorchLearner does not apply it"):
            config.validate()
