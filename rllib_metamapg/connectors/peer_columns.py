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
    (peer slot k's row at the same env step) and ``metamapg_peer{k}_row`` (that
    row's index in the peer's batch), ``metamapg_episode`` (episode chunk number
    within this batch), ``metamapg_t`` (step within that chunk) and
    ``metamapg_row`` (the row's own index).  A
    chunk is what the env runner returned for one episode in this sample, or a
    slice of it that RLlib gave to one learner; the estimators treat each chunk
    as an episode that starts at its first row.

    Peers of an agent are the other agents of its episode in sorted agent-id
    order.  Needs simultaneous moves (every agent acts at every env step) and
    one module per agent; anything else is refused with an explanation.

    Attributes:
        peer_modules: After a call, ``{module_id: [module id of peer slot k, ...]}``
            (for inspection; the batch itself carries it, see :func:`peer_module_ids`).
    """

    def __init__(self, input_observation_space=None, input_action_space=None, **kwargs):
        super().__init__(input_observation_space, input_action_space, **kwargs)
        self.peer_modules: Dict[str, List[str]] = {}

    @override(ConnectorV2)
    def __call__(self, *, rl_module, episodes, batch: Dict[str, Any], **kwargs):
        rows, slots, structure = self._locate(episodes, batch)
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
                for col in PEER_SOURCE_COLUMNS:
                    if col in batch[peer_mid]:
                        batch[mid][peer_column(k, col)] = tree.map_structure(
                            lambda x: x[idx.to(x.device)], batch[peer_mid][col])
        self.peer_modules = slots
        return batch

    def _locate(self, episodes, batch) -> Tuple[Dict[str, List[List[np.ndarray]]],
                                                 Dict[str, List[str]],
                                                 Dict[str, Tuple[np.ndarray, np.ndarray]]]:
        """Per module and peer slot, the peer's row indices for each own row; and
        per module, each row's episode chunk number and step within it."""
        offsets: Dict[str, int] = {}
        spans = []  # per multi-agent episode: {agent: (module, start, len, t_started)}
        parts: Dict[str, Tuple[List[np.ndarray], List[np.ndarray]]] = {}
        for number, episode in enumerate(episodes):
            span = {}
            for agent_id in episode.agent_ids:
                sa = episode.agent_episodes[agent_id]
                mid = sa.module_id
                if mid not in batch:
                    continue
                start = offsets.get(mid, 0)
                span[agent_id] = (mid, start, len(sa), sa.t_started)
                offsets[mid] = start + len(sa)
                ep_ids, steps = parts.setdefault(mid, ([], []))
                ep_ids.append(np.full(len(sa), number, np.int64))
                steps.append(np.arange(len(sa), dtype=np.int64))
            spans.append(span)
        structure = {mid: (np.concatenate(e), np.concatenate(t))
                     for mid, (e, t) in parts.items()}
        for mid, n in offsets.items():
            have = len(batch[mid][Columns.ACTIONS])
            if have != n:
                raise ValueError(f"AddPeerColumns: module {mid!r} has {have} rows but its "
                                 f"episodes account for {n}; it must run after GAE on an "
                                 "unpadded (non-recurrent) batch.")
        rows: Dict[str, List[List[np.ndarray]]] = {}
        slots: Dict[str, List[str]] = {}
        for span in spans:
            agents = sorted(span, key=str)
            for agent_id in agents:
                mid, start, length, t0 = span[agent_id]
                peers = [a for a in agents if a != agent_id]
                peer_mids = [span[a][0] for a in peers]
                if mid in peer_mids:
                    raise ValueError(f"MetaMAPG needs one module per agent: agents "
                                     f"{[a for a in agents if span[a][0] == mid]} share "
                                     f"module {mid!r}. Map each agent to its own module "
                                     "(policy_mapping_fn).")
                if slots.setdefault(mid, peer_mids) != peer_mids:
                    raise ValueError(f"MetaMAPG: module {mid!r} meets different peer "
                                     f"modules in different episodes ({slots[mid]} vs "
                                     f"{peer_mids}); use a fixed agent -> module mapping.")
                per_slot = rows.setdefault(mid, [[] for _ in peers])
                for k, peer in enumerate(peers):
                    p_mid, p_start, p_len, p_t0 = span[peer]
                    if (p_len, p_t0) != (length, t0):
                        raise ValueError(
                            f"MetaMAPG needs simultaneous moves: in one episode agent "
                            f"{agent_id!r} has {length} steps from t={t0} but agent "
                            f"{peer!r} has {p_len} from t={p_t0}.")
                    per_slot[k].append(np.arange(p_start, p_start + p_len))
        return rows, slots, structure
