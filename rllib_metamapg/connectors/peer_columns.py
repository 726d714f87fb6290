"""Learner connector that gives every agent's rows its peers' data at the same env step.

RLlib batches each module separately and its minibatch iterator shuffles each
module's batch on its own, so rows of different modules are not aligned.  The
peer correction needs, for each of agent i's timesteps, what every peer
observed, did, and was credited with *at that env step*.  This piece runs after
GAE (so advantages exist), finds each agent's rows by walking the episodes in
the order the batch was built, and gathers the peers' columns row by row into
agent i's batch.  Shuffling later moves whole rows, peer columns included.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np
import torch
import tree

from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.utils.annotations import override

PEER_SOURCE_COLUMNS = (Columns.OBS, Columns.ACTIONS, Columns.ACTION_LOGP,
                       Postprocessing.ADVANTAGES, Columns.LOSS_MASK)
# Episode structure of each row: which episode chunk of this train batch it belongs
# to (the same number in every module's batch for one multi-agent episode chunk),
# and its step index within that chunk.  The trajectory estimator groups rows by
# these columns, so it never depends on row order (minibatching shuffles rows).
EPISODE_COLUMN = "metamapg_episode"
# Every column this connector adds starts with it (learners strip them by it).
ADDED_COLUMN_PREFIX = "metamapg_"
STEP_COLUMN = "metamapg_t"


# Each row's index in its module's batch as this connector built it, and (per peer
# slot) the peer's row index in the peer's batch.  Minibatching shuffles a module's
# batch in place; with these a learner can compute a per-row quantity once per
# module and still find it for every peer row (MATRL's predicted log-probabilities).
ROW_COLUMN = "metamapg_row"
PEER_ROW = "row"

# Which module peer slot k is: its index in sorted(module ids), on every row (so the
# learner reads its peers from the batch itself, like every other column).
PEER_MODULE = "module"

# Whether peer slot k acted at this row's env step (False where it had ended, had not
# started, or skipped the step: its other columns there are a placeholder row's).
PEER_PRESENT = "present"


def present_peer_mask(batch: Dict[str, Any], slot: int):
    """Peer ``slot``'s presence and loss mask on ``batch``'s rows (bool), or None
    when it acted, unmasked, at every row."""
    here = batch.get(peer_column(slot, PEER_PRESENT))
    mask = batch.get(peer_column(slot, Columns.LOSS_MASK))
    if mask is not None:
        here = mask.bool() if here is None else here.bool() & mask.bool()
    return here


def peer_module_ids(batch: Dict[str, Any], module_ids) -> List[str]:
    """The peer module of each slot of one module's batch, from its PEER_MODULE columns."""
    order = sorted(module_ids)
    out, k = [], 0
    while peer_column(k, PEER_MODULE) in batch:
        out.append(order[int(batch[peer_column(k, PEER_MODULE)][0])])
        k += 1
    return out


def peer_column(slot: int, column: str) -> str:
    """Name of peer ``slot``'s copy of ``column`` in a module's batch."""
    return f"metamapg_peer{slot}_{column}"


class AddPeerColumns(ConnectorV2):
    """Adds peer columns and the episode structure to every module's rows.

    Columns added: ``metamapg_peer{k}_{obs,actions,action_logp,advantages,loss_mask}``
    (peer slot k's row at the same env step), ``metamapg_peer{k}_row`` (that
    row's index in the peer's batch), ``metamapg_peer{k}_present`` (whether the
    peer acted at that env step at all), ``metamapg_episode`` (episode chunk number
    within this batch), ``metamapg_t`` (env step within that chunk, the same clock
    for every agent) and ``metamapg_row`` (the row's own index).  A
    chunk is what the env runner returned for one episode in this sample, or a
    slice of it that RLlib gave to one learner; the estimators treat each chunk
    as an episode that starts at its first row.

    Peers of an agent are the other agents of the batch in sorted agent-id order.
    Agents may end (or start) at different times: a peer that did not act at a
    row's env step is flagged absent there.  Needs one module per agent;
    anything else is refused with an explanation.

    Attributes:
        peer_modules: After a call, ``{module_id: [module id of peer slot k, ...]}``
            (for inspection; the batch itself carries it, see :func:`peer_module_ids`).
    """

    def __init__(self, input_observation_space=None, input_action_space=None, **kwargs):
        super().__init__(input_observation_space, input_action_space, **kwargs)
        self.peer_modules: Dict[str, List[str]] = {}

    @override(ConnectorV2)
    def __call__(self, *, rl_module, episodes, batch: Dict[str, Any], **kwargs):
        rows, slots, structure, present = self._locate(episodes, batch)
        for mid, (episode, step) in structure.items():
            device = batch[mid][Columns.ACTIONS].device if torch.is_tensor(
                batch[mid][Columns.ACTIONS]) else None
            batch[mid][EPISODE_COLUMN] = torch.as_tensor(episode, device=device)
            batch[mid][STEP_COLUMN] = torch.as_tensor(step, device=device)
            batch[mid][ROW_COLUMN] = torch.arange(len(step), device=device)
        order = sorted(rl_module.keys())
        for mid, peer_mids in slots.items():
            for k, peer_mid in enumerate(peer_mids):
                actions = batch[mid][Columns.ACTIONS]
                batch[mid][peer_column(k, PEER_MODULE)] = torch.full(
                    (len(actions),), order.index(peer_mid), dtype=torch.long,
                    device=actions.device if torch.is_tensor(actions) else None)
                idx = torch.as_tensor(np.concatenate(rows[mid][k]), dtype=torch.long)
                batch[mid][peer_column(k, PEER_ROW)] = (
                    idx.to(actions.device) if torch.is_tensor(actions) else idx)
                here = torch.as_tensor(np.concatenate(present[mid][k]))
                batch[mid][peer_column(k, PEER_PRESENT)] = (
                    here.to(actions.device) if torch.is_tensor(actions) else here)
                for col in PEER_SOURCE_COLUMNS:
                    if col in batch[peer_mid]:
                        batch[mid][peer_column(k, col)] = tree.map_structure(
                            lambda x: x[idx.to(x.device)], batch[peer_mid][col])
        self.peer_modules = slots
        return batch

    def _locate(self, episodes, batch) -> Tuple[Dict[str, List[List[np.ndarray]]],
                                                 Dict[str, List[str]],
                                                 Dict[str, Tuple[np.ndarray, np.ndarray]],
                                                 Dict[str, List[List[np.ndarray]]]]:
        """Per module and peer slot, the peer's row index for each own row and
        whether the peer acted at that env step; per module, each row's episode
        chunk number and env step within the chunk."""
        offsets: Dict[str, int] = {}
        # Per multi-agent episode chunk: {agent: (module, first row, env step of each row)}.
        spans = []
        parts: Dict[str, Tuple[List[np.ndarray], List[np.ndarray]]] = {}
        for number, episode in enumerate(episodes):
            span = {}
            for agent_id in episode.agent_ids:
                sa = episode.agent_episodes[agent_id]
                mid = sa.module_id
                if mid not in batch:
                    continue
                start = offsets.get(mid, 0)
                env_steps = _env_steps(episode, agent_id, sa)
                span[agent_id] = (mid, start, env_steps)
                offsets[mid] = start + len(sa)
                ep_ids, steps = parts.setdefault(mid, ([], []))
                ep_ids.append(np.full(len(sa), number, np.int64))
                steps.append(env_steps)
            spans.append(span)
        structure = {mid: (np.concatenate(e), np.concatenate(t))
                     for mid, (e, t) in parts.items()}
        for mid, n in offsets.items():
            have = len(batch[mid][Columns.ACTIONS])
            if have != n:
                raise ValueError(f"AddPeerColumns: module {mid!r} has {have} rows but its "
                                 f"episodes account for {n}; it must run after GAE on an "
                                 "unpadded (non-recurrent) batch.")
        # Every agent of the batch is a peer of every other, in every chunk: an agent
        # that ended (or has not started) is absent from a chunk's rows, not a
        # different peer set.
        module_of: Dict[Any, str] = {}
        for span in spans:
            for agent_id, (mid, _, _) in span.items():
                if module_of.setdefault(agent_id, mid) != mid:
                    raise ValueError(f"MetaMAPG: agent {agent_id!r} is mapped to modules "
                                     f"{module_of[agent_id]!r} and {mid!r} in different "
                                     "episodes; use a fixed agent -> module mapping.")
        agents = sorted(module_of, key=str)
        for agent_id in agents:
            shared = [a for a in agents if module_of[a] == module_of[agent_id]]
            if len(shared) > 1:
                raise ValueError(f"MetaMAPG needs one module per agent: agents {shared} "
                                 f"share module {module_of[agent_id]!r}. Map each agent to "
                                 "its own module (policy_mapping_fn).")
        slots = {module_of[a]: [module_of[p] for p in agents if p != a] for a in agents}
        rows: Dict[str, List[List[np.ndarray]]] = {
            module_of[a]: [[] for _ in agents[1:]] for a in agents}
        present: Dict[str, List[List[np.ndarray]]] = {
            module_of[a]: [[] for _ in agents[1:]] for a in agents}
        for span in spans:
            # Each agent's batch row at each env step it acted at in this chunk.
            row_at = {a: {int(t): start + r for r, t in enumerate(steps)}
                      for a, (_, start, steps) in span.items()}
            for agent_id, (mid, _, env_steps) in span.items():
                for k, peer in enumerate(p for p in agents if p != agent_id):
                    at = row_at.get(peer, {})
                    idx = np.array([at.get(int(t), -1) for t in env_steps], np.int64)
                    present[mid][k].append(idx >= 0)
                    # An absent peer's columns are row 0's, flagged not present.
                    rows[mid][k].append(np.maximum(idx, 0))
        return rows, slots, structure, present


def _env_steps(episode, agent_id, sa) -> np.ndarray:
    """The env step (from the chunk's first) at which each of the agent's rows acted.

    Read from the episode's env-step -> agent-step map, so agents that end early,
    start late or skip steps line up with their peers.  Rows past the map (the
    one masked step PPO's learner connector appends to every chunk) follow the
    agent's last mapped step.
    """
    t0 = sa.t_started
    try:
        mapping = episode.env_t_to_agent_t[agent_id].get()
    except (KeyError, AttributeError, IndexError):
        mapping = None
    where = {}
    if mapping is not None:
        for j, t in enumerate(mapping):
            if not isinstance(t, str):
                where.setdefault(int(t) - t0, j)
    out = np.empty(len(sa), np.int64)
    last_row, last_step = -1, -1
    for r in range(len(sa)):
        if r in where and where[r] > last_step:
            last_row, last_step = r, where[r]
            out[r] = last_step
        else:  # not in the map: after the previous row (episodes built by hand)
            out[r] = last_step + (r - last_row)
    return out
