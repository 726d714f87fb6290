"""Which parameters of an RLlib module its policy reads: what every method's learner
needs to treat the actor and the critic apart (``critic_lr``'s two optimizers,
Meta-MAPG's corrections, MATRL's best response).

For RLlib's default PPO module with separate actor and critic encoders the action
logits read only the actor's encoder and the ``pi`` head; :func:`actor_forward`
computes them without running the critic.  Any other module is treated as one
policy: all of its trainable parameters.
"""

from __future__ import annotations

import weakref
from typing import Dict, List, Optional

import torch
from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
from ray.rllib.core.models.base import ENCODER_OUT, ActorCriticEncoder

Params = Dict[str, torch.Tensor]


def trainable_params(module: torch.nn.Module) -> Params:
    """The module's parameters that require a gradient, by name."""
    return {n: p for n, p in module.named_parameters() if p.requires_grad}



_ACTOR_PATH = ("encoder.actor_encoder.", "pi.")
# The layers that give the action logits in RLlib's default PPO module (and MAPPO's).
ACTOR_PREFIXES = _ACTOR_PATH


class _ActorForward(torch.nn.Module):
    """The actor's encoder and ``pi`` head of RLlib's default PPO module (shared, not
    copied), so that one functional call computes the logits."""

    def __init__(self, module):
        super().__init__()
        self.encoder = module.encoder.actor_encoder
        self.head = module.pi

    def forward(self, batch):
        return self.head(self.encoder(batch)[ENCODER_OUT])


_FORWARDS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def actor_forward(module):
    """``(_ActorForward, {module's parameter name: its name there})``, built once."""
    if module not in _FORWARDS:
        encoder, head = _ACTOR_PATH
        rename = {n: ("encoder." + n[len(encoder):] if n.startswith(encoder)
                      else "head." + n[len(head):])
                  for n, _ in module.named_parameters() if n.startswith(_ACTOR_PATH)}
        _FORWARDS[module] = (_ActorForward(module), rename)
    return _FORWARDS[module]


def actor_path(module) -> Optional[tuple]:
    """Parameter prefixes of the layers that give the action logits, when ``module``
    is RLlib's default PPO module with separate actor and critic encoders.

    Its forward also runs the critic's encoder, which the corrections never use
    (about 40 % of the forward's cost with the default MLP).  Any other module --
    a subclass that changes the forward, a shared or recurrent encoder -- runs its
    own forward: ``None``.  A module class may declare its own prefixes as
    ``actor_param_prefixes`` when its logits read only those layers (MAPPO's, whose
    critic reads a wider input).
    """
    declared = getattr(type(module), "actor_param_prefixes", None)
    if declared is not None:
        return tuple(declared)
    forward = getattr(type(module), "_forward_train", None)
    if forward is not DefaultPPOTorchRLModule._forward_train:
        return None
    encoder = getattr(module, "encoder", None)
    if (not isinstance(encoder, ActorCriticEncoder) or encoder.config.shared
            or module.is_stateful() or getattr(module, "pi", None) is None):
        return None
    return _ACTOR_PATH



def policy_param_names(module, names) -> List[str]:
    """Those of ``names`` (``module``'s parameter names) that the logits read."""
    path = actor_path(module)
    return list(names) if path is None else [n for n in names if n.startswith(path)]



def policy_params(module: torch.nn.Module) -> Params:
    """The trainable parameters the action distribution depends on, by name: the
    actor's for RLlib's default PPO module with a separate critic, else all of them.
    The corrections of every other parameter are zero."""
    params = trainable_params(module)
    return {n: params[n] for n in policy_param_names(module, params)}
