"""The base Torch learner of every method: :class:`PluginPPOTorchLearner`, RLlib's PPO
learner with ``critic_lr`` built in, so every method's critic trains alike.

``critic_lr`` gives the critic its own optimizer (App. E.1: actor lr 3e-4, critic 1e-3).

RLlib's Torch learner gives each module one Adam over all of its parameters at
``lr`` and clips that optimizer's gradients together (``grad_clip``, by global norm
by default).  With a separate actor and critic that couples them twice: the critic
learns at the actor's rate, and a large value-loss gradient shrinks the actor's
step through the one shared norm.  With ``critic_lr`` set, the actor's parameters
keep RLlib's default optimizer and ``lr``; the critic's get their own Adam at
``critic_lr``, and RLlib clips each optimizer's gradients on its own.  Unset (the
default), the learner is RLlib's, bit for bit.

The split needs a module whose logits do not read the critic's parameters: RLlib's
default PPO module with separate actor and critic encoders (``vf_share_layers``
off).  Any other module is refused when the learner is built.
"""

from __future__ import annotations

from typing import List, Tuple

import torch
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.utils.annotations import override

from rllib_metamapg.rllib_base.torch.module_params import policy_params, trainable_params

CRITIC_OPTIMIZER = "critic"


def actor_and_critic(module, module_id: str) -> Tuple[List[torch.nn.Parameter],
                                                      List[torch.nn.Parameter]]:
    """``module``'s parameters split into those its logits read and the rest."""
    actor_ids = {id(p) for p in policy_params(module.unwrapped()).values()}
    params = list(trainable_params(module.unwrapped()).values())
    actor = [p for p in params if id(p) in actor_ids]
    critic = [p for p in params if id(p) not in actor_ids]
    if not actor or not critic:
        raise ValueError(
            f"critic_lr is set, but module {module_id!r} ({type(module.unwrapped()).__name__}) "
            "has no critic apart from its actor: it needs RLlib's default PPO module with "
            "separate actor and critic encoders (vf_share_layers=False). Unset critic_lr "
            "to train every parameter at lr.")
    return actor, critic


class CriticOptimizerMixin:
    """``critic_lr`` for any Torch learner: put it before the learner class
    (``class L(CriticOptimizerMixin, SomeTorchLearner)``).  A method on PPO uses
    :class:`PluginPPOTorchLearner`, which has it."""

    @override(TorchLearner)
    def configure_optimizers_for_module(self, module_id, config=None) -> None:
        critic_lr = getattr(config, "critic_lr", None)
        if critic_lr is None:
            return super().configure_optimizers_for_module(module_id, config)
        actor, critic = actor_and_critic(self._module[module_id], module_id)
        # The actor keeps RLlib's default optimizer name, so ``lr`` (and its
        # schedule) and the checkpoints of an actor-only run mean the same.
        self.register_optimizer(module_id=module_id, optimizer=torch.optim.Adam(actor),
                                params=actor, lr_or_lr_schedule=config.lr)
        self.register_optimizer(module_id=module_id, optimizer_name=CRITIC_OPTIMIZER,
                                optimizer=torch.optim.Adam(critic), params=critic,
                                lr_or_lr_schedule=critic_lr)


class PluginPPOTorchLearner(CriticOptimizerMixin, PPOTorchLearner):
    """RLlib's ``PPOTorchLearner`` with ``critic_lr``: the learner a method subclasses
    (``class MyTorchLearner(MyLearner, PluginPPOTorchLearner)``), and the default
    learner of :class:`~rllib_metamapg.rllib_base.config.PluginPPOConfig`.  With
    ``critic_lr`` unset it is RLlib's PPO learner, bit for bit."""

