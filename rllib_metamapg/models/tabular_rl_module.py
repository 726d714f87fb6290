"""A tabular policy/value RLModule: the tabular engine's policy inside RLlib.

With the one-hot observations of :class:`~rllib_metamapg.envs.MatrixGameEnv` this
module *is* the engine's :class:`~rllib_metamapg.tabular.policies.TabularPolicy`:
``bernoulli`` holds one logit per state with ``p(action 0 | s) = sigmoid(theta[s])``
(logits ``[theta, 0]``), ``softmax`` holds one logit per state and action.  That
is what lets the RLlib learner's corrections be checked against the exact engine.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import gymnasium as gym
import numpy as np
import torch

from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.utils.annotations import override


class TabularPPOTorchRLModule(TorchRLModule, ValueFunctionAPI):
    """Linear-in-one-hot policy and value tables for PPO-family learners.

    ``model_config`` keys:
        parameterization: ``"bernoulli"`` (two actions; default when the action
            space has two actions) or ``"softmax"``.
        init_logit: Initial policy logit(s): a float for every state, or one per
            state (bernoulli) / a ``(states, actions)`` nested list (softmax).
            Default 0.  No random initialisation: the module consumes no RNG.
    """

    @override(TorchRLModule)
    def setup(self):
        obs, act = self.observation_space, self.action_space
        if not (isinstance(obs, gym.spaces.Box) and len(obs.shape) == 1):
            raise ValueError("TabularPPOTorchRLModule needs a flat Box (one-hot) "
                             f"observation space; got {obs}.")
        if not isinstance(act, gym.spaces.Discrete):
            raise ValueError("TabularPPOTorchRLModule needs a Discrete action space; "
                             f"got {act}.")
        cfg = dict(self.model_config or {})
        n_states, n_actions = int(obs.shape[0]), int(act.n)
        kind = cfg.get("parameterization", "bernoulli" if n_actions == 2 else "softmax")
        if kind not in ("bernoulli", "softmax"):
            raise ValueError(f"model_config.parameterization={kind!r}: choose "
                             "'bernoulli' or 'softmax'.")
        if kind == "bernoulli" and n_actions != 2:
            raise ValueError("model_config.parameterization='bernoulli' needs two "
                             f"actions; the action space has {n_actions}.")
        self.parameterization = kind
        width = 1 if kind == "bernoulli" else n_actions
        init = np.asarray(cfg.get("init_logit", 0.0), np.float32)
        if init.ndim == 0:
            init = np.full((n_states, width), init, np.float32)
        elif init.size == n_states * width:
            init = init.reshape(n_states, width)
        else:
            raise ValueError(f"model_config.init_logit has shape {init.shape}; give a "
                             f"float or {n_states * width} values ({n_states} states x "
                             f"{width}).")
        if not np.all(np.isfinite(init)):
            raise ValueError("model_config.init_logit must be finite.")
        self.logits = torch.nn.Parameter(torch.tensor(init))
        if not self.inference_only:
            self.values = torch.nn.Parameter(torch.zeros(n_states))

    def _action_logits(self, obs: torch.Tensor) -> torch.Tensor:
        table = obs @ self.logits
        if self.parameterization == "bernoulli":
            return torch.cat([table, torch.zeros_like(table)], dim=-1)
        return table

    @override(TorchRLModule)
    def _forward(self, batch: Dict[str, Any], **kwargs) -> Dict[str, Any]:
        return {Columns.ACTION_DIST_INPUTS: self._action_logits(batch[Columns.OBS])}

    @override(ValueFunctionAPI)
    def compute_values(self, batch: Dict[str, Any],
                       embeddings: Optional[Any] = None) -> torch.Tensor:
        return batch[Columns.OBS] @ self.values
