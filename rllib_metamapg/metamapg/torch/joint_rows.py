"""Every agent's rows of one train batch on one joint clock, for the trajectory estimator.

Each module's batch holds only the steps its agent acted.  When agents end at
different times (an agent that dies or leaves while its peers play on), agent
i's rows miss the env steps after its end, yet a peer's policy gradient there
still depends on theta_i through i's earlier actions (the DiCE weight of step t
carries every action up to t).  So the peer correction needs the union of the
agents' steps: this module scatters each module's rows onto the sorted set of
``(episode chunk, env step)`` pairs that any agent acted at, with a ``present``
mask per agent (placeholder columns where it did not act, which the estimator
ignores).  With simultaneous moves the joint rows are every module's own rows,
in their own order.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Sequence, Tuple

import torch
import tree

from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing

from rllib_metamapg.connectors.peer_columns import EPISODE_COLUMN, STEP_COLUMN
from rllib_metamapg.metamapg.torch.corrections import AgentSlice, EpisodeLayout


def joint_slices(batches: Dict[str, Dict[str, Any]], order: Sequence[str],
                 slice_of: Callable[[str], Tuple[Any, Dict[str, torch.Tensor]]]
                 ) -> Tuple[List[AgentSlice], torch.Tensor, EpisodeLayout]:
    """``(agents, valid, layout)`` of modules ``order`` on their joint rows.

    Args:
        batches: Each module's whole train batch, with the episode and env-step
            columns of :class:`~rllib_metamapg.connectors.AddPeerColumns`.
        order: The modules, the one whose corrections are wanted first.
        slice_of: ``module id -> (module, params)`` for the ``AgentSlice``.

    Returns:
        One ``AgentSlice`` per module (``present`` set), the rows any agent acted
        at unmasked, and their episode layout.
    """
    keys, width = [], 1
    for mid in order:
        b = batches[mid]
        if len(b[Columns.ACTIONS]) == 0:
            raise ValueError(f"MetaMAPG: module {mid!r} has no rows in this train batch.")
        width = max(width, int(b[STEP_COLUMN].max()) + 1)
    for mid in order:
        b = batches[mid]
        keys.append(b[EPISODE_COLUMN].long() * width + b[STEP_COLUMN].long())
    joint = torch.unique(torch.cat(keys))  # sorted: episode by episode, in time order
    agents, valid = [], torch.zeros(joint.shape, dtype=torch.bool, device=joint.device)
    for mid, key in zip(order, keys):
        b = batches[mid]
        at = torch.searchsorted(joint, key)
        # Row 0 stands in where the agent did not act; ``present`` says where it did.
        src = torch.zeros_like(joint).index_put((at,), torch.arange(len(key),
                                                                    device=joint.device))
        mask = b.get(Columns.LOSS_MASK)
        acted = torch.ones_like(key, dtype=torch.bool) if mask is None else mask.bool()
        present = torch.zeros_like(valid).index_put((at,), acted)
        valid |= present
        module, params = slice_of(mid)
        agents.append(AgentSlice(
            module, params, {Columns.OBS: tree.map_structure(lambda x: x[src],
                                                             b[Columns.OBS])},
            b[Columns.ACTIONS][src], b[Columns.ACTION_LOGP][src],
            b[Postprocessing.ADVANTAGES][src], present))
    layout = EpisodeLayout(joint // width, joint % width, valid)
    return agents, valid, layout
