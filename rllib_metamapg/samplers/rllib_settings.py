"""The RLlib samplers' settings and what they refuse, checked before Ray starts (Ray-free).

``config.training(sampler="ma_props", behaviour={...})``: ``behaviour`` takes the
tabular engine's names (:class:`~.behaviour.BehaviourSettings`: ``lr``, ``every``,
``clip``, ``epochs``, ``minibatches``, ``kl_cutoff``, ``grad_clip``, ``optimizer``)
plus the RLlib-only ones below.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, Mapping, Sequence

from rllib_metamapg.samplers.behaviour import BehaviourError, BehaviourSettings

# MA-PROPS keeps one logit per joint action (its Delta network's output layer and
# every buffered target row have this width); beyond it the update stops being cheap.
MAX_JOINT_ACTIONS = 4096

# The behaviour update's defaults with a Delta *network*.  The tabular tuning (lr 0.3,
# eps 1) overshoots here: one Adam step moves each of the last layer's weights, so a
# Delta logit moves by up to (hidden width + 1) x lr.  Measured with frozen targets
# (20 batches of 64 steps; docs/samplers.md), lr 0.03 with eps 0.3 gives the lowest
# joint sampling error on Stag Hunt and the IPD.
NETWORK_UPDATE = BehaviourSettings(lr=0.03, clip=0.3)


@dataclasses.dataclass(frozen=True)
class RLlibBehaviour:
    """Everything ``behaviour={...}`` sets.

    Attributes:
        update: The behaviour update's settings (shared with the tabular engine).
        hidden: Width of the Delta network's tanh hidden layer (0: Delta is linear in
            the features).
        tv_max_states: Log the sampling error only while the buffer holds at most
            this many distinct joint states (beyond, nearly every state is unique and
            the empirical error is meaningless).
        per_runner_buffers: Accept ``num_env_runners >= 2``, where each env runner
            corrects only its own share of the batch (the batch's joint error is then
            at most the runners' mean error, not corrected as a whole).
    """

    update: BehaviourSettings = NETWORK_UPDATE
    hidden: int = 64
    tv_max_states: int = 256
    per_runner_buffers: bool = False


RLLIB_KEYS = ("hidden", "tv_max_states", "per_runner_buffers")
UPDATE_KEYS = tuple(f.name for f in dataclasses.fields(BehaviourSettings))


def parse_behaviour(values: Mapping[str, Any] | None) -> RLlibBehaviour:
    """``behaviour={...}`` as settings; raises ``BehaviourError`` naming the key."""
    values = dict(values or {})
    unknown = sorted(set(values) - set(UPDATE_KEYS) - set(RLLIB_KEYS))
    if unknown:
        raise BehaviourError(f"behaviour: unknown key(s) {unknown}; choose from "
                             f"{list(UPDATE_KEYS) + list(RLLIB_KEYS)}.")
    update = dataclasses.replace(NETWORK_UPDATE,
                                 **{k: values[k] for k in UPDATE_KEYS if k in values})
    update.validate()
    hidden = values.get("hidden", 64)
    if not isinstance(hidden, int) or isinstance(hidden, bool) or hidden < 0:
        raise BehaviourError(f"behaviour hidden={hidden!r} must be an integer >= 0 (the "
                             "width of Delta's hidden layer; 0 for a linear Delta).")
    tv = values.get("tv_max_states", 256)
    if not isinstance(tv, int) or isinstance(tv, bool) or tv < 1:
        raise BehaviourError(f"behaviour tv_max_states={tv!r} must be an integer >= 1.")
    per_runner = values.get("per_runner_buffers", False)
    if not isinstance(per_runner, bool):
        raise BehaviourError(f"behaviour per_runner_buffers={per_runner!r} must be True "
                             "or False.")
    return RLlibBehaviour(update, hidden, tv, per_runner)


def check_spaces(kind: str, agents: Sequence[str], action_spaces: Mapping[str, Any],
                 observation_spaces: Mapping[str, Any]) -> Dict[str, int]:
    """Each agent's action count; raises ``BehaviourError`` for what the sampler cannot
    draw: non-discrete actions, a joint space too large to enumerate, unflattenable
    observations."""
    import gymnasium as gym

    counts = {}
    for agent in agents:
        space = action_spaces[agent]
        if not isinstance(space, gym.spaces.Discrete):
            raise BehaviourError(
                f"sampler={kind!r} needs discrete actions; agent {agent!r} has {space}. "
                "Continuous and multi-discrete actions have no enumerable joint action "
                "set; use sampler='on_policy' on this env.")
        counts[agent] = int(space.n)
        try:
            gym.spaces.flatdim(observation_spaces[agent])
        except (NotImplementedError, ValueError, TypeError) as err:
            raise BehaviourError(f"sampler={kind!r}: agent {agent!r}'s observation space "
                                 f"{observation_spaces[agent]} cannot be flattened into "
                                 f"the Delta network's input ({err}).") from None
    widths = [math.prod(counts.values())] if kind == "ma_props" else list(counts.values())
    if max(widths) > MAX_JOINT_ACTIONS:
        raise BehaviourError(
            f"sampler={kind!r}: {max(widths)} joint actions "
            f"({' x '.join(str(c) for c in counts.values())}) exceed the limit of "
            f"{MAX_JOINT_ACTIONS} the behaviour policy enumerates; use sampler='props' "
            "(one behaviour policy per agent) or an env with fewer actions.")
    return counts
