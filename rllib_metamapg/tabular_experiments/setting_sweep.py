"""One setting swept over values: each arm's success rate with Wilson CIs per value.

``--param`` names a learning setting (any :class:`~..settings.LearningSettings` field,
e.g. ``peer_coef``, ``inner_lr``, ``unroll_length``, ``batch_size``) or a payoff entry
``payoff.I.A1.A2`` (player I's payoff at the joint action; for a repeated game, of its
stage game).  ``--mirror`` sets the same entry of the other player with the actions
swapped, so a symmetric game stays symmetric (Stag Hunt's temptation is
``payoff.0.1.0 --mirror``).  Every value runs the ablation's paired seeds
(:func:`.ablation.run_game`), so one value's row equals ``metamapg tabular ablation``
with that setting.  Every value's settings and game are built and validated before
any run starts.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from rllib_metamapg import atomic
from rllib_metamapg.tabular_experiments.ablation import run_game
from rllib_metamapg.tabular.games import MemoryOneGame, NormalFormGame
from rllib_metamapg.tabular.settings import LearningSettings, SettingsError, fields

PAYOFF = re.compile(r"^payoff\.(\d+)\.(\d+)\.(\d+)$")


def _cast(field, text):
    kind = field.type if isinstance(field.type, str) else field.type.__name__
    if kind == "int":
        return int(text)
    if kind in ("float", "Optional[float]"):
        return float(text)
    if kind == "bool":
        return str(text).lower() in ("1", "true", "yes")
    return str(text)


def _with_payoff(game, index: Tuple[int, int, int], value: float, mirror: bool):
    stage = game.stage if isinstance(game, MemoryOneGame) else game
    pay = np.array(stage.payoffs, dtype=np.float64)
    i, a1, a2 = index
    if pay.ndim != 3 or i >= pay.shape[0] or a1 >= pay.shape[1] or a2 >= pay.shape[2]:
        raise SettingsError(f"--param payoff.{i}.{a1}.{a2}: {game.name!r} has payoffs of "
                            f"shape {pay.shape} (player, action 1, action 2).")
    pay[i, a1, a2] = value
    if mirror:
        pay[1 - i, a2, a1] = value
    new = NormalFormGame(f"{stage.name}", pay, stage.action_names, stage.targets)
    if isinstance(game, MemoryOneGame):
        return dataclasses.replace(game, stage=new)
    return new


def plan(game, settings: LearningSettings, param: str, values: Sequence[str],
         mirror: bool) -> List[Tuple[str, object, LearningSettings]]:
    """``[(label, game, settings)]`` per value, every one validated."""
    if not values:
        raise SettingsError("--values: give at least one value.")
    names = {f.name: f for f in fields()}
    out = []
    m = PAYOFF.match(param)
    if m is None and param not in names:
        raise SettingsError(f"--param={param!r}: a learning setting ({', '.join(names)}) or "
                            "a payoff entry payoff.I.A1.A2.")
    if mirror and m is None:
        raise SettingsError("--mirror applies to a payoff entry (payoff.I.A1.A2).")
    for text in values:
        try:
            v = float(text) if m is not None else _cast(names[param], text)
            if m is not None and not np.isfinite(v):
                raise ValueError
        except ValueError:
            raise SettingsError(f"--values: {text!r} is not a valid {param}.") from None
        if m is not None:
            g, s = _with_payoff(game, tuple(int(x) for x in m.groups()), v, mirror), settings
        else:
            g, s = game, dataclasses.replace(settings, **{param: v})
        s.validate()
        out.append((str(text), g, s))
    return out


def run_setting_sweep(game, arms, settings: LearningSettings, param: str,
                      values: Sequence[str], mirror: bool, seeds: int, init_std: float,
                      threshold: float, seed: int, out: Path, log=print) -> Dict:
    runs = plan(game, settings, param, values, mirror)
    rows = {}
    for label, g, s in runs:
        log(f"[tabular sweep] {param}={label}: {len(arms)} arms x {seeds} paired seeds")
        rows[label] = run_game(g, arms, s, seeds, init_std, threshold, seed)["arms"]
    doc = {"experiment": "setting_sweep", "game": game.name, "param": param,
           "mirror": mirror, "values": [r[0] for r in runs], "seeds": seeds,
           "settings": settings.record(), "by_value": rows}
    if game.name == "custom":  # a user's --payoff: its payoffs are in no table
        doc["settings"]["payoff"] = game.describe()
    write(doc, Path(out))
    return doc


def format_table(doc: Dict) -> str:
    arms = list(next(iter(doc["by_value"].values())))
    lines = [f"| {doc['param']} | " + " | ".join(arms) + " |", "|---|" + "---|" * len(arms)]
    for v, row in doc["by_value"].items():
        cells = [f"{100 * row[a]['rate']:.0f}% [{100 * row[a]['wilson95'][0]:.0f}, "
                 f"{100 * row[a]['wilson95'][1]:.0f}]" for a in arms]
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write(doc: Dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = doc["values"]
    arms = list(doc["by_value"][values[0]])
    try:
        x = np.array([float(v) for v in values])
    except ValueError:  # a categorical setting (e.g. correction_form)
        x = np.arange(len(values))
    fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
    for arm in arms:
        rate = np.array([doc["by_value"][v][arm]["rate"] for v in values])
        lo = np.array([doc["by_value"][v][arm]["wilson95"][0] for v in values])
        hi = np.array([doc["by_value"][v][arm]["wilson95"][1] for v in values])
        ax.plot(x, 100 * rate, "o-", label=arm)
        ax.fill_between(x, 100 * lo, 100 * hi, alpha=0.15)
    ax.set_xticks(x, values)
    ax.set_xlabel(doc["param"])
    ax.set_ylabel("success rate (%) with Wilson 95% CI")
    ax.set_title(f"{doc['game']}: {doc['seeds']} paired seeds per value")
    ax.legend(fontsize=8)
    rows = [[v, a, e["successes"], e["n"], f"{e['rate']:.4f}", f"{e['wilson95'][0]:.4f}",
             f"{e['wilson95'][1]:.4f}", e.get("vs_reference", {}).get("mcnemar_p", "")]
            for v in values for a, e in doc["by_value"][v].items()]
    with atomic.file_set(out) as stage:
        atomic.write_csv(stage / "sweep.csv", ["value", "arm", "successes", "n", "rate",
                                               "wilson_lo", "wilson_hi",
                                               "mcnemar_p_vs_reference"], rows)
        atomic.write_figure(stage / "sweep.png", fig)
        atomic.write_json(stage / "sweep.json", doc)
