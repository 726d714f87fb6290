"""MA-PROPS's experiments: sampling error on a fixed target, and learning with each sampler.

* ``sampling-error``: a fixed random target per seed (each agent's logits drawn
  from N(0, 1)); every sampler draws ``samples`` joint actions into one buffer
  (no target update); the joint and per-agent TV against the target after each
  draw, averaged over seeds (the paper's Fig. 4 setting).
* ``samplers``: independent PPO from uniform policies with each sampler on
  paired seeds; success = the greedy joint action is one of the game's targets.
  Games with the same action counts run as one batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from rllib_metamapg.errors import UsageError
from rllib_metamapg import atomic
from rllib_metamapg import registry
from rllib_metamapg.samplers.behaviour import (BehaviourSettings, TabularSampler, tv_joint,
                                               tv_marginal)
from rllib_metamapg.samplers.learning import PPOSettings, train
from rllib_metamapg.stats import mcnemar_paired, wilson_ci
from rllib_metamapg.tabular.games import get_game

SAMPLERS = tuple(registry.sampler_names("tabular"))
# PPO batch / lr per game size: MA-PROPS App. G, Table 3.  Behaviour update: the best
# setting of the paper's own grid for each size, tuned with `samplers-tune` (64 seeds;
# docs/samplers.md): lr 0.3, m = 1, eps = 1 for both (Table 3's 0.03 for 2x2 and our
# earlier eps = 0.3 were 12 and 6 points worse).
SETTINGS_BY_ACTIONS = {2: (PPOSettings(batch=20, lr=0.1), BehaviourSettings(lr=0.3, clip=1.0)),
                       3: (PPOSettings(batch=45, lr=0.1), BehaviourSettings(lr=0.3, clip=1.0))}


class SamplingError(UsageError):
    """Bad experiment input; the message names the option."""


def _game(name: str):
    try:
        game = get_game(name)
    except Exception as err:  # the games module names the choices
        raise SamplingError(f"--game(s): {err}") from None
    if game.num_states != 1:
        raise SamplingError(f"--game(s): {name!r} is a repeated game; these experiments take "
                            "normal-form games.")
    if len(set(game.num_actions)) != 1 or game.num_actions[0] not in SETTINGS_BY_ACTIONS:
        raise SamplingError(f"--game(s): {name!r} has actions {game.num_actions}; the "
                            f"tuned settings cover {sorted(SETTINGS_BY_ACTIONS)} actions per "
                            "player.")
    return game


def _positive(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SamplingError(f"{name}={value!r} must be an integer >= 1.")


def check_samplers(samplers: Sequence[str]) -> None:
    bad = [s for s in samplers if s not in SAMPLERS]
    if bad or not samplers:
        raise SamplingError(f"--samplers: {bad or 'none given'}; choose from {list(SAMPLERS)}.")


def run_sampling_error(game_name: str, samples: int, seeds: int,
                       samplers: Sequence[str] = SAMPLERS,
                       progress: Optional[Callable[[int, int], None]] = None) -> Dict:
    game = _game(game_name)
    _positive("--samples", samples)
    _positive("--seeds", seeds)
    check_samplers(samplers)
    acts = game.num_actions
    behaviour = SETTINGS_BY_ACTIONS[acts[0]][1]
    g = torch.Generator().manual_seed(0)
    logp = [torch.log_softmax(torch.randn(seeds, a, generator=g, dtype=torch.float64), -1)
            for a in acts]
    doc = {"experiment": "sampling_error", "game": game.name, "samples": samples,
           "seeds": seeds, "behaviour": vars(behaviour), "samplers": {}}
    total, done = samples * len(samplers), 0
    for kind in samplers:
        smp = TabularSampler(kind, acts, seeds, behaviour, torch.Generator().manual_seed(1))
        target = smp.joint_logp(logp).exp()
        joint, agents = [], [[] for _ in acts]
        for _ in range(samples):
            smp.draw(logp)
            c = smp.joint_counts()
            joint.append(float(tv_joint(c, target).mean()))
            for i, a in enumerate(acts):
                agents[i].append(float(tv_marginal(c, target, smp.agent_action[i], a).mean()))
            done += 1
            if progress is not None:
                progress(done, total)
        doc["samplers"][kind] = {"joint": joint,
                                 **{f"agent_{i}": v for i, v in enumerate(agents)}}
    return doc


def check_steps(steps: Optional[int], batches: Sequence[int]) -> None:
    """``--steps`` must cover one target update of every game size it runs (a run
    with none has no batch to score; it used to end in a NaN and a traceback)."""
    if steps is not None and batches and steps < max(batches):
        raise SamplingError(f"--steps={steps} is less than one target update ({max(batches)} "
                            "env steps for the largest games given); give at least that, or "
                            "leave --steps out for 100 updates.")


def smoke_steps(game_names: Sequence[str]) -> int:
    """Two target updates of the largest game size (METAMAPG_SMOKE's budget)."""
    return 2 * max(SETTINGS_BY_ACTIONS[_game(n).num_actions[0]][0].batch for n in game_names)


def run_samplers(game_names: Sequence[str], seeds: int, steps: Optional[int] = None,
                 samplers: Sequence[str] = SAMPLERS,
                 progress: Optional[Callable[[int, int], None]] = None) -> Dict:
    games = [_game(n) for n in game_names]
    _positive("--seeds", seeds)
    if steps is not None:
        _positive("--steps", steps)
    check_samplers(samplers)
    groups: Dict[int, List] = {}
    for g in games:
        groups.setdefault(g.num_actions[0], []).append(g)
    check_steps(steps, [SETTINGS_BY_ACTIONS[a][0].batch for a in groups])
    doc = {"experiment": "samplers", "seeds": seeds, "samplers": list(samplers),
           "games": {}, "settings": {}}
    total = sum((steps or 100 * SETTINGS_BY_ACTIONS[a][0].batch) * len(samplers)
                for a in groups)
    done = [0]

    def tick(i, n):
        if progress is not None:
            progress(done[0] + i, total)

    outcomes = {}
    for a, group in groups.items():
        ppo, behaviour = SETTINGS_BY_ACTIONS[a]
        n_steps = steps or 100 * ppo.batch  # 100 target updates
        doc["settings"][f"{a}x{a}"] = {"ppo": vars(ppo), "behaviour": vars(behaviour),
                                       "steps": n_steps}
        for kind in samplers:
            out = train(group, kind, seeds, n_steps, seed=0, ppo=ppo, behaviour=behaviour,
                        progress=tick)
            done[0] += n_steps
            for k, g in enumerate(group):
                outcomes[(g.name, kind)] = out["success"][k]
                ok = out["success"][k]
                lo, hi = wilson_ci(int(ok.sum()), seeds)
                doc["games"].setdefault(g.name, {})[kind] = {
                    "rate": float(ok.mean()), "wilson95": [lo, hi],
                    "joint_tv_mean": float(out["joint_tv"][k].mean()),
                    "success_per_seed": ok.astype(int).tolist()}
    ref = "on_policy"
    for name, row in doc["games"].items():
        for kind in samplers:
            if kind != ref and ref in samplers:
                row[kind]["vs_on_policy"] = mcnemar_paired(outcomes[(name, ref)],
                                                           outcomes[(name, kind)])
    return doc


def format_table(doc: Dict) -> str:
    samplers = doc["samplers"]
    lines = ["| game | " + " | ".join(samplers) + " |", "|---|" + "---|" * len(samplers)]
    for name, row in doc["games"].items():
        cells = []
        for s in samplers:
            e = row[s]
            p = e.get("vs_on_policy")
            cells.append(f"{100 * e['rate']:.0f}% [{100 * e['wilson95'][0]:.0f}, "
                         f"{100 * e['wilson95'][1]:.0f}]"
                         + ("" if p is None else f" (p={p['p_value']:.2g})"))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_sampling_error(doc: Dict, out) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = list(next(iter(doc["samplers"].values())))
    fig, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 3.2))
    for ax, curve in zip(np.atleast_1d(axes), curves):
        for kind, row in doc["samplers"].items():
            ax.plot(np.arange(1, len(row[curve]) + 1), row[curve], label=kind)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{doc['game']}: {curve} TV")
        ax.set_xlabel("samples")
    np.atleast_1d(axes)[0].legend()
    fig.tight_layout()
    rows = [[kind, curve, n + 1, f"{v:.6f}"] for kind, row in doc["samplers"].items()
            for curve, values in row.items() for n, v in enumerate(values)]
    with atomic.file_set(Path(out)) as stage:
        atomic.write_csv(stage / "sampling_error.csv", ["sampler", "curve", "samples", "tv"],
                         rows)
        atomic.write_figure(stage / "sampling_error.png", fig)
        atomic.write_json(stage / "sampling_error.json", doc)


def write_samplers(doc: Dict, out) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, samplers = list(doc["games"]), doc["samplers"]
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(names)), 3.5))
    width = 0.8 / len(samplers)
    for j, s in enumerate(samplers):
        ax.bar(np.arange(len(names)) + j * width,
               [doc["games"][n][s]["rate"] for n in names], width, label=s)
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2)
    ax.set_xticklabels(names, rotation=70, fontsize=7)
    ax.set_ylabel("success rate")
    ax.legend()
    fig.tight_layout()
    rows = []
    for n in names:
        for s in samplers:
            e = doc["games"][n][s]
            p = e.get("vs_on_policy", {}).get("p_value", "")
            rows.append([n, s, f"{e['rate']:.4f}", f"{e['wilson95'][0]:.4f}",
                         f"{e['wilson95'][1]:.4f}", p])
    with atomic.file_set(Path(out)) as stage:
        atomic.write_csv(stage / "samplers.csv", ["game", "sampler", "rate", "wilson_lo",
                                                  "wilson_hi", "p_vs_on_policy"], rows)
        atomic.write_figure(stage / "samplers.png", fig)
        atomic.write_json(stage / "samplers.json", doc)
