"""Learner connector: each agent's critic input, every agent's observation at its step.

Placed right after RLlib's ``AddObservationsFromEpisodesToBatch`` (before GAE, which
calls the critic), it adds the column :data:`CRITIC_OBS` for each agent's rows: the
concatenation, in sorted module-id order, of every agent's (flattened) observation
at the same step of the same multi-agent episode -- the env's joint observation,
which is what MAPPO's critic conditions on when the env has no global state of its
own.  With ``critic_input="own"`` the column is the agent's own observation: the
critic then sees what ``ippo``'s sees (the test that MAPPO reduces to IPPO).

The joint input needs every agent to act at every step (simultaneous-move envs:
matrix games, MPE, Overcooked, LBF) and one module per agent; episodes where agents
act at different steps are refused by name.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence

import numpy as np
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.utils.annotations import override

CRITIC_OBS = "mappo_critic_obs"
CRITIC_INPUTS = ("joint", "own")


def _flat(observations, n: int) -> np.ndarray:
    return np.asarray(observations, dtype=np.float32).reshape(n, -1)


class AddCriticObservations(ConnectorV2):
    """Adds :data:`CRITIC_OBS` to every agent's rows (see the module docstring).

    Args:
        module_order: Module ids in the order their observations are concatenated.
        critic_input: ``"joint"`` (every agent's observation) or ``"own"``.
    """

    def __init__(self, input_observation_space=None, input_action_space=None, *,
                 module_order: Sequence[str] = (), critic_input: str = "joint", **kwargs):
        super().__init__(input_observation_space, input_action_space, **kwargs)
        if critic_input not in CRITIC_INPUTS:
            raise ValueError(f"critic_input={critic_input!r}; choose one of {CRITIC_INPUTS}.")
        self.module_order: List[str] = list(module_order)
        self.critic_input = critic_input

    @override(ConnectorV2)
    def __call__(self, *, rl_module, batch: Dict[str, Any], episodes, **kwargs):
        for episode in episodes:
            agents = getattr(episode, "agent_episodes", None)
            if agents is None:
                raise ValueError("MAPPO: the centralized critic needs multi-agent episodes; "
                                 "this env is single-agent (use PPO).")
            by_module = {}
            for sa in agents.values():
                if sa.module_id in by_module:
                    raise ValueError(f"MAPPO: agents {sorted(agents)} share module "
                                     f"{sa.module_id!r}; the critic's input lists one "
                                     "observation per module, so wire one module per agent "
                                     "(the default).")
                by_module[sa.module_id] = sa
            if self.critic_input == "joint":
                lengths = {m: len(sa) for m, sa in by_module.items()}
                if len(set(lengths.values())) != 1 or set(by_module) != set(self.module_order):
                    raise ValueError(
                        f"MAPPO: the centralized critic needs every agent to act at every "
                        f"step, but this episode's agents have {lengths} steps (modules "
                        f"{self.module_order} expected); use critic_input='own' or ippo for "
                        "envs whose agents act at different steps.")
            for sa in by_module.values():
                n = len(sa)
                if self.critic_input == "own":
                    items = _flat(sa.get_observations(slice(0, n)), n)
                else:
                    items = np.concatenate(
                        [_flat(by_module[m].get_observations(slice(0, n)), n)
                         for m in self.module_order], axis=1)
                self.add_n_batch_items(batch, CRITIC_OBS, items_to_add=items, num_items=n,
                                       single_agent_episode=sa)
        return batch
