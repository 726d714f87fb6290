"""The learner's estimator computes each stage on its own rows: checked against a
second, plain implementation that runs every stage on the whole batch with masks.

``compute_corrections_for`` gives each stage (inner step l, outer objective) a
sub-batch of its own episodes, builds the whole-batch policy gradient from the
first stage's inner gradient and the remaining rows, and runs only the actor's
layers of RLlib's default PPO module.  None of that may change a number: the
reference below is the estimator written the direct way (full forward, every
stage on all rows with its episodes' mask, own/peer as the gradient of
``<theta^L - theta, G>``), for three agents, masked rows, unequal episode
lengths, the trajectory and per-step estimators, unroll (L = 1, 2) and taylor,
with tabular modules and with RLlib's default MLP module.
"""

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.func import functional_call

from ray.rllib.algorithms.ppo.ppo_catalog import PPOCatalog
from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from rllib_metamapg.metamapg.torch import corrections as C
from rllib_metamapg.metamapg.torch.corrections import (
    AgentSlice, EpisodeLayout, compute_corrections_for)
from rllib_metamapg.rllib_base.torch import module_params
from rllib_metamapg.rllib_base.torch.module_params import trainable_params
from rllib_metamapg.models import TabularPPOTorchRLModule

AGENTS, OBS = 3, 4


def mlp(seed, shared=False):
    torch.manual_seed(seed)
    return RLModuleSpec(
        module_class=DefaultPPOTorchRLModule, catalog_class=PPOCatalog,
        observation_space=gym.spaces.Box(-1.0, 1.0, (OBS,), np.float32),
        action_space=gym.spaces.Discrete(3),
        model_config={"fcnet_hiddens": [16, 16], "vf_share_layers": shared}).build()


def tabular(seed):
    logits = np.random.default_rng(seed).normal(0, 0.5, OBS).tolist()  # one per state
    return TabularPPOTorchRLModule(
        observation_space=gym.spaces.Box(0.0, 1.0, (OBS,), np.float32),
        action_space=gym.spaces.Discrete(2), model_config={"init_logit": logits})


def batch(kind, seed=0):
    """Three agents on 14 episodes of 1-9 steps, some rows masked, rows shuffled."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 10, (14,), generator=gen)
    episode = torch.repeat_interleave(torch.arange(14) * 7 + 3, lengths)  # sparse ids
    step = torch.cat([torch.arange(n) for n in lengths.tolist()])
    perm = torch.randperm(len(step), generator=gen)
    episode, step = episode[perm], step[perm]
    rows = len(step)
    valid = torch.rand(rows, generator=gen) > 0.15
    mods = [mlp(k) if kind == "mlp" else tabular(k) for k in range(AGENTS)]
    acts = 3 if kind == "mlp" else 2
    obs = (torch.rand(rows, OBS, generator=gen) * 2 - 1 if kind == "mlp"
           else torch.nn.functional.one_hot(torch.randint(0, OBS, (rows,), generator=gen),
                                            OBS).float())
    agents = [AgentSlice(m, trainable_params(m), {Columns.OBS: obs},
                         torch.randint(0, acts, (rows,), generator=gen),
                         -torch.rand(rows, generator=gen) - 0.3,
                         torch.randn(rows, generator=gen)) for m in mods]
    return agents, valid, EpisodeLayout(episode, step, valid)


def reference(agents, valid, layout, *, inner_lr, unroll_length, form, estimator, split):
    """Every stage on the whole batch (masks select its episodes); full forward."""
    trajectory = estimator == "trajectory"

    def logp(a, params):
        logits = functional_call(a.module, params, (a.batch,))[Columns.ACTION_DIST_INPUTS]
        return a.module.get_train_action_dist_cls().from_logits(logits).logp(a.actions)

    def weights(params_list):
        lr = sum(logp(a, p) for a, p in zip(agents, params_list)) - sum(
            a.logp_old for a in agents)
        return layout.weights(lr) if trajectory else torch.exp(lr)

    def mean_over(part):
        n = layout.count_episodes(part) if trajectory else int(part.sum())
        return lambda x: (x * part.float()).sum() / max(n, 1)

    def grad(out, params, **kw):
        gs = torch.autograd.grad(out, list(params.values()), allow_unused=True, **kw)
        return [torch.zeros_like(p) if g is None else g for p, g in zip(params.values(), gs)]

    theta = [a.params for a in agents]
    w0 = weights(theta)
    stages = unroll_length + 1
    means = ([mean_over(m) for m in layout.split(stages)] if split
             else [mean_over(valid)] * stages)
    cur = theta
    for step in range(unroll_length):
        w = weights(cur)
        cur = [dict(zip(c, [c[n] + inner_lr * g for n, g in zip(c, grad(
            means[step](w * a.advantages), c, create_graph=True))])) for a, c in zip(agents, cur)]
    at = cur if form == "unroll" else theta
    w_at = weights(at)
    out = []
    for i in range(AGENTS):
        pg = grad(mean_over(valid)(w0 * agents[i].advantages), theta[i], retain_graph=True)
        keys = [(k, n) for k in range(AGENTS) for n in at[k]]
        G = dict(zip(keys, grad(means[-1](w_at * agents[i].advantages),
                                {key: at[key[0]][key[1]] for key in keys}, retain_graph=True)))
        terms = []
        for ks in ([i], [k for k in range(AGENTS) if k != i]):
            s = sum(((cur[k][n] - theta[k][n]) * G[(k, n)]).sum() for k in ks for n in cur[k])
            terms.append(grad(s, theta[i], retain_graph=True))
        out.append((pg, *terms))
    return out


CASES = [("trajectory", "unroll", 1, True), ("trajectory", "unroll", 2, True),
         ("trajectory", "taylor", 1, True), ("per_step", "unroll", 1, True),
         ("per_step", "unroll", 2, True), ("trajectory", "unroll", 1, False),
         ("per_step", "taylor", 1, False)]


@pytest.mark.parametrize("kind", ["tabular", "mlp"])
@pytest.mark.parametrize("estimator, form, length, split", CASES)
def test_stage_rows_give_the_masked_whole_batch_estimate(kind, estimator, form, length, split):
    agents, valid, layout = batch(kind, seed=length)
    kw = dict(inner_lr=0.6, unroll_length=length, form=form, estimator=estimator, split=split)
    got = compute_corrections_for(agents, valid, layout=layout, **kw)
    want = reference(agents, valid, layout, **kw)
    for i, (g, (pg, own, peer)) in enumerate(zip(got, want)):
        assert g.split == split
        for name, a, b in (("pg", g.pg, pg), ("own", g.own, own), ("peer", g.peer, peer)):
            for x, y in zip(a, b):
                torch.testing.assert_close(x, y, rtol=2e-4, atol=1e-6,
                                           msg=lambda m: f"agent {i} {name}: {m}")
        assert max(float(x.abs().max()) for x in g.own) > 1e-4
        assert max(float(x.abs().max()) for x in g.peer) > 1e-4


def test_the_actor_path_reads_rllibs_logits_and_only_the_actors_parameters():
    module = mlp(0)
    assert module_params.actor_path(module) is not None
    agent = AgentSlice(module, trainable_params(module), {Columns.OBS: torch.rand(5, OBS)},
                       torch.tensor([0, 1, 2, 1, 0]), torch.zeros(5), torch.zeros(5))
    logits = module.forward_train(agent.batch)[Columns.ACTION_DIST_INPUTS]
    want = module.get_train_action_dist_cls().from_logits(logits).logp(agent.actions)
    torch.testing.assert_close(C.action_logp(agent, agent.params), want)
    names = C._policy_param_names(agent)
    assert names and not any("critic" in n or n.startswith("vf.") for n in names)
    assert set(trainable_params(module)) - set(names)  # the critic's are left out
    assert list(module_params.policy_params(module)) == names  # what the learner differentiates
    assert list(module_params.policy_params(tabular(0))) == list(trainable_params(tabular(0)))
    # Anything else runs its own forward: a shared encoder, a tabular module.
    assert module_params.actor_path(mlp(0, shared=True)) is None
    assert module_params.actor_path(tabular(0)) is None


def test_a_stage_with_no_valid_rows_still_gives_the_whole_batch_policy_gradient():
    """Episodes are numbered over every row, masked ones too, so a stage can get no
    valid rows (here the middle episode is all masked and the valid ones are both
    even): the policy gradient is still the whole batch's, the terms are zero."""
    agents, _, _ = batch("mlp", seed=3)
    rows = len(agents[0].actions)
    episode = torch.arange(rows) * 3 // rows  # three episodes
    step = torch.arange(rows) - torch.tensor([(episode == e).nonzero()[0, 0] for e in episode])
    valid = episode != 1
    layout = EpisodeLayout(episode, step, valid)
    kw = dict(inner_lr=0.6, unroll_length=1, form="unroll", estimator="trajectory",
              split=True)
    got = compute_corrections_for(agents, valid, layout=layout, **kw)
    want = reference(agents, valid, layout, **kw)
    for g, (pg, own, peer) in zip(got, want):
        for x, y in zip(g.pg, pg):
            torch.testing.assert_close(x, y, rtol=2e-4, atol=1e-6)
        assert all(float(x.abs().max()) == 0 for x in g.own + g.peer)
        assert all(float(y.abs().max()) == 0 for y in own + peer)
