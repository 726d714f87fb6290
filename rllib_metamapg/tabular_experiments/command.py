"""``metamapg tabular <experiment>``: argument parsing and dispatch."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Dict

from rllib_metamapg.tabular import threads
from rllib_metamapg.tabular_experiments import defaults
from rllib_metamapg.tabular_experiments.options import (THRESHOLD, OptionsError,
                                                         add_learning_options, arms_option,
                                                         learning_settings, list_option,
                                                         paper_defaults, resolve,
                                                         resolve_game, settings_record)
from rllib_metamapg import atomic, limits
from rllib_metamapg.registry import experiment_arms, sampler_names
from rllib_metamapg.tabular.games import GAMES, list_games


def _progress(label: str):
    """Prints a line at every 10% of a long run, with elapsed time."""
    start = time.perf_counter()
    state = {"last": -1}

    def report(step: int, total: int):
        tenth = (10 * step) // total
        if tenth != state["last"]:
            state["last"] = tenth
            print(f"[{label}] step {step}/{total} ({100 * step // total}%) "
                  f"{time.perf_counter() - start:.1f}s", file=sys.stderr, flush=True)

    return report


def _basin(v: Dict) -> int:
    from rllib_metamapg.tabular_experiments import basin

    game = resolve_game(v["game"], v["payoff"])
    arms = arms_option(v)
    settings = learning_settings(v)
    record = settings_record(settings, game if v["payoff"] is not None else None)
    probs = basin.grid_values(v["grid"], v["grid_low"], v["grid_high"])
    res = basin.run_basin(game, arms, settings, probs, v["threshold"], v["seed"],
                          progress=_progress("basin"))
    doc = basin.write_basin(res, v["out"], record)
    for arm, s in doc["arms"].items():
        print(f"{arm:>10}: {100 * s['fraction']:5.1f}% of {s['cells']} cells "
              f"(+{s['gained_vs_reference']} / -{s['lost_vs_reference']} vs "
              f"{doc['reference']})")
    print(f"wrote {v['out'] / 'basin.json'}, basin.csv, basin.png")
    return 0


def _flow(v: Dict) -> int:
    from rllib_metamapg.tabular_experiments import basin, flow

    game = resolve_game(v["game"], v["payoff"])
    arms = arms_option(v)
    settings = learning_settings(v)
    record = settings_record(settings, game if v["payoff"] is not None else None)
    grid = basin.grid_values(v["grid"], v["grid_low"], v["grid_high"])
    for key in ("arrows", "starts"):
        if not isinstance(v[key], int) or v[key] < 2:
            raise OptionsError(f"--{key}={v[key]!r} must be an integer >= 2.")
    arrows = basin.grid_values(v["arrows"], v["grid_low"], v["grid_high"])
    starts = basin.grid_values(v["starts"], v["grid_low"], v["grid_high"])
    flow.check_game(game, settings)
    res = flow.run_flow(game, arms, settings, grid, arrows, starts, v["threshold"],
                        v["seed"], progress=_progress("flow"))
    flow.write_flow(res, v["out"], record)
    for arm, frac in res["basin"].fractions().items():
        print(f"{arm:>10}: basin {100 * frac:5.1f}%")
    print(f"wrote {v['out'] / 'flow.json'}, flow.csv, flow.png")
    return 0


def _restart(v: Dict) -> int:
    from rllib_metamapg.tabular_experiments import restart

    games = [resolve_game(g) for g in list_option(v["games"])]
    custom = None if v["payoff"] is None else resolve_game("custom", v["payoff"])
    games += [custom] if custom is not None else []
    arms = arms_option(v)
    settings = learning_settings(v)
    record = settings_record(settings, custom)
    restart.check_options(v["seeds"], v["max_restarts"], v["init_range"])
    doc = restart.run_restart(games, arms, settings, record, v["seeds"],
                              v["max_restarts"], v["init_range"], v["threshold"], v["seed"],
                              progress=_progress("restart"))
    restart.write_restart(doc, v["out"])
    print(restart.format_table(doc))
    print(f"wrote {v['out'] / 'restart.json'}, restart.csv, restart.png")
    return 0


def _ablation(v: Dict) -> int:
    from rllib_metamapg.tabular_experiments import ablation

    games = [resolve_game(g) for g in list_option(v["games"])]
    custom = None if v["payoff"] is None else resolve_game("custom", v["payoff"])
    games += [custom] if custom is not None else []
    arms = arms_option(v)
    settings = learning_settings(v)
    record = settings_record(settings, custom)
    doc = ablation.run_ablation(games, arms, settings, record, v["seeds"],
                                v["init_std"], v["threshold"], v["seed"], v["out"],
                                progress=_progress("ablation"),
                                log=lambda m: print(m, file=sys.stderr, flush=True),
                                trace=bool(v.get("trace")))
    print(ablation.format_table(doc))
    print(f"wrote {v['out'] / 'ablation.json'}, ablation.csv, ablation.png"
          + (", trace.csv" if v.get("trace") else ""))
    return 0


def _cooldown(v: Dict) -> int:
    from rllib_metamapg.tabular_experiments import cooldown

    game = resolve_game(v["game"], v["payoff"])
    arms = arms_option(v)
    settings = learning_settings(v)
    record = settings_record(settings, game if v["payoff"] is not None else None)
    if not isinstance(v["settle_steps"], int) or v["settle_steps"] < 0:
        raise OptionsError(f"--settle-steps={v['settle_steps']!r} must be an integer >= 0.")
    doc = cooldown.run_cooldown(game, arms, settings, record, v["seeds"],
                                v["init_std"], v["threshold"], v["seed"], v["out"],
                                settle_steps=v["settle_steps"], progress=_progress("cooldown"),
                                settle_progress=_progress("settle"))
    for arm, e in doc["arms"].items():
        extra = ""
        if "dist_to_phi_star_median" in e:
            extra = (f", median distance to phi* {e['dist_to_phi_star_median']:.3f} / to "
                     f"shaped phi*_lambda {e['dist_to_shaped_median']:.3f}")
        paper = f" (paper {100 * e['paper_rate']:.2f}%)" if "paper_rate" in e else ""
        vs = e.get("vs_reference")
        test = (f", vs {doc['reference_arm']}: +{vs['gained']} -{vs['lost']}, McNemar "
                f"p = {vs['mcnemar_p']:.3g}" if vs else "")
        c = e.get("vs_constant")
        test += (f", vs {c['arm']}: +{c['gained']} -{c['lost']}, p = {c['mcnemar_p']:.3g}"
                 if c else "")
        print(f"{arm:>10}: {100 * e['rate']:5.1f}% [{100 * e['wilson95'][0]:.1f}, "
              f"{100 * e['wilson95'][1]:.1f}]{paper}{test}{extra}")
    if doc["fixed_points"]:
        print(f"fixed-point shift ||phi*_lambda - phi*|| = {doc['fixed_points']['shift_norm']:.4f}")
    print(f"wrote {v['out'] / 'cooldown.json'}, cooldown.csv, cooldown.png")
    return 0


def _alignment(v: Dict) -> int:
    from rllib_metamapg.tabular_experiments import alignment, basin

    game = resolve_game(v["game"], v["payoff"])
    arms = arms_option(v)
    settings = learning_settings(v)
    record = settings_record(settings, game if v["payoff"] is not None else None)
    probs = basin.grid_values(v["grid"], v["grid_low"], v["grid_high"])
    doc = alignment.run_alignment(game, arms, settings, record, probs,
                                  v["threshold"], v["seed"], v["eq_temperature"], v["lambdas"],
                                  v["radius"], v["lipschitz_samples"], v["target_prob"],
                                  v["out"], progress=_progress("alignment"))
    c, g = doc["cosine"], doc["local_geometry"]
    gained = "n/a" if c["mean_gained"] is None else f"{c['mean_gained']:.3f}"
    print(f"cosine(peer, to C..C): grid mean {c['mean_grid']:.3f}, gained cells "
          f"({c['gained_cells']}) mean {gained}, lost cells {c['lost_cells']}")
    print(f"at phi* (tau={g['eq_temperature']}): mu={g['mu']:.4g}, mu_M(peer)="
          f"{g['mu_M']['peer']:.4g}, mu_M(own)={g['mu_M']['own']:.4g}, "
          f"mu_M(own+peer)={g['mu_M']['own_plus_peer']:.4g}, L~{g['lipschitz_estimate']:.4g}")
    print(f"wrote {v['out'] / 'alignment.json'}, alignment.csv, alignment.png")
    return 0


def _compare(v: Dict) -> int:
    from rllib_metamapg.tabular_experiments import compare, suite

    arms = arms_option(v)
    if limits.smoke() and not v["quick"]:  # a smoke run is at most the CI-sized one
        limits.announce_smoke({"quick": True})
        v = dict(v, quick=True)
    if v["quick"]:
        v = dict(v, steps=min(v["steps"], compare.QUICK_STEPS))
    settings = learning_settings(v)
    try:
        families = suite.check_families(list_option(v["families"]))
    except ValueError as err:
        raise OptionsError(str(err)) from None
    for name in ("seeds", "grid", "random_games", "own_setting_seeds"):
        low = 0 if name == "own_setting_seeds" else (2 if name == "grid" else 1)
        if not isinstance(v[name], int) or isinstance(v[name], bool) or v[name] < low:
            raise OptionsError(f"--{name.replace('_', '-')}={v[name]!r} must be an integer "
                               f">= {low}.")
    if not v["init_std"] >= 0:
        raise OptionsError(f"--init-std={v['init_std']!r} must be >= 0.")
    grid_values_check(v)
    opts = compare.CompareOptions(families, v["seeds"], v["init_std"], v["threshold"],
                                  v["seed"], v["grid"], v["grid_low"], v["grid_high"],
                                  v["random_games"], v["own_setting_seeds"])
    if v["quick"]:
        opts = compare.quick_options(opts)
    doc = compare.run_compare(arms, settings, settings_record(settings), opts, v["out"],
                              progress=None,
                              log=lambda m: print(m, file=sys.stderr, flush=True))
    print(compare.format_tables(doc))
    print(f"wrote {v['out'] / 'compare.json'}, compare.csv, compare.md, compare.png")
    return 0


def _setting_sweep(v: Dict) -> int:
    from rllib_metamapg.tabular_experiments import setting_sweep

    game = resolve_game(v["game"], v["payoff"])
    arms = arms_option(v)
    settings = learning_settings(v)
    if v["param"] is None:
        raise OptionsError("--param: name a learning setting or a payoff entry "
                           "payoff.I.A1.A2.")
    if not isinstance(v["seeds"], int) or v["seeds"] < 1:
        raise OptionsError(f"--seeds={v['seeds']!r} must be an integer >= 1.")
    values = list_option(v["values"])
    setting_sweep.plan(game, settings, v["param"], values, bool(v["mirror"]))  # validate all
    doc = setting_sweep.run_setting_sweep(
        game, arms, settings, v["param"], values, bool(v["mirror"]), v["seeds"],
        v["init_std"], v["threshold"], v["seed"], v["out"],
        log=lambda m: print(m, file=sys.stderr, flush=True))
    print(setting_sweep.format_table(doc))
    print(f"wrote {v['out'] / 'sweep.json'}, sweep.csv, sweep.png")
    return 0


def grid_values_check(v: Dict) -> None:
    from rllib_metamapg.tabular_experiments import basin

    basin.grid_values(v["grid"], v["grid_low"], v["grid_high"])


def _demo(v: Dict) -> int:
    out = Path(v["out"])
    print("== paired-seed component ablation (Stag Hunt, IPD) ==", flush=True)
    abl = _defaults(defaults.ABLATION)
    abl.update(out=out, seeds=v["seeds"], arms=experiment_arms("demo"))
    _ablation(abl)
    print("\n== Stag Hunt basin map ==", flush=True)
    _basin(dict(_defaults(defaults.BASIN), out=out))
    print(f"\ntables and figures: {out}/ablation.png, {out}/basin.png")
    return 0


def _paths(v: Dict) -> int:
    from rllib_metamapg.tabular_experiments import paths

    games = [resolve_game(g) for g in list_option(v["games"])]
    settings = learning_settings(v)
    doc = paths.run_paths(games, arms_option(v), settings, settings_record(settings, None),
                          v["seeds"], v["init_std"], v["threshold"], v["seed"], v["out"],
                          progress=_progress("paths"))
    print(paths.format_table(doc))
    print(f"wrote {v['out'] / 'paths.json'}, paths.md")
    return 0


def _defaults(defaults: Dict) -> Dict:
    return {k: v() if callable(v) else v for k, v in dict(paper_defaults(), **defaults).items()}


COMMANDS = {
    "basin": (defaults.BASIN, _basin, "Stag Hunt style basin map per arm"),
    "ablation": (defaults.ABLATION, _ablation, "component ablation over paired seeds"),
    "cooldown": (defaults.COOLDOWN, _cooldown, "PG vs constant shaping vs shape-then-cool"),
    "alignment": (defaults.ALIGNMENT, _alignment, "peer alignment, mu_M and certified radii"),
    "compare": (defaults.COMPARE, _compare, "every method, arm and sampler on paired seeds "
                "over the game families"),
    "flow": (defaults.FLOW, _flow, "update field (arrows) and trajectories over the basin "
             "map per arm (2x2 one-shot games)"),
    "restart": (defaults.RESTART, _restart, "success within k uniform re-initialisations "
                "per arm (paired restarts)"),
    "sweep": (defaults.SWEEP, _setting_sweep, "one setting or payoff entry swept over "
              "values: success per arm with Wilson CIs"),
    "paths": (defaults.PATHS, _paths, "the own and peer corrections along learning "
              "trajectories: their component toward the target, by distance to entry"),
}


def add_parser(sub) -> None:
    """Registers ``tabular`` and its experiments on an argparse subparsers object."""
    tab = sub.add_parser("tabular", help="exact/sampled tabular experiments (no Ray)")
    tsub = tab.add_subparsers(dest="experiment", required=True)
    for name, (own_defaults, _, help_) in COMMANDS.items():
        p = tsub.add_parser(name, help=help_, description=help_ + ". Defaults: the "
                            "paper's tabular settings; see docs/tabular.md.")
        add_learning_options(p)
        if "families" in own_defaults:
            p.add_argument("--families", nargs="+", help="game families, 'a b' or 'a,b' "
                           f"({', '.join(defaults.FAMILY_NAMES)})")
            p.add_argument("--random-games", type=int,
                           help="random games per MATRL family")
            p.add_argument("--own-setting-seeds", type=int, help="seeds of MA-PROPS's own "
                           "table (independent PPO; 0 skips it)")
            p.add_argument("--quick", action="store_true", default=None,
                           help="CI-sized: 6 seeds, 4x4 basin grid, 2 random games per "
                           "family, 80 steps (every method, arm and family)")
        elif "games" in own_defaults:
            p.add_argument("--games", nargs="+", help=f"built-in games, 'a b' or 'a,b' "
                           f"({', '.join(list_games())})")
        else:
            p.add_argument("--game", help="built-in game name")
        if "payoff" in own_defaults:
            p.add_argument("--payoff", help="payoff matrix as JSON, or a YAML/JSON file")
        if "grid" in own_defaults:
            p.add_argument("--grid", type=int, help="grid points per player")
            p.add_argument("--grid-low", type=float, help="lowest initial p(action 0)")
            p.add_argument("--grid-high", type=float, help="highest initial p(action 0)")
        if "seeds" in own_defaults:
            p.add_argument("--seeds", type=int, help="number of paired seeds")
        if "init_std" in own_defaults:
            p.add_argument("--init-std", type=float, help="std of the N(0, s^2) init")
        if name == "restart":
            p.add_argument("--max-restarts", type=int,
                           help="re-initialisations after the first run (0 = none)")
            p.add_argument("--init-range", type=float,
                           help="inits uniform on [-r, r] per state and player")
        if name == "sweep":
            p.add_argument("--param", help="a learning setting (peer_coef, inner_lr, ...) or "
                           "a payoff entry payoff.I.A1.A2")
            p.add_argument("--values", nargs="+", help="its values, 'a b' or 'a,b'")
            p.add_argument("--mirror", action="store_true", default=None,
                           help="payoff entry: also set the other player's mirrored entry")
        if name == "ablation":
            p.add_argument("--trace", action="store_true", default=None,
                           help="also record, per arm and step, alpha_n, |d_n| and the "
                           "norms of the PG/own/peer terms and lambda (trace.csv)")
        if name == "flow":
            p.add_argument("--arrows", type=int, help="arrow grid points per player")
            p.add_argument("--starts", type=int,
                           help="trajectory starts per player (starts x starts runs)")
        if name == "cooldown":
            p.add_argument("--settle-steps", type=int,
                           help="noise-free steps before measuring distances (0 = skip)")
        if name == "alignment":
            p.add_argument("--eq-temperature", type=float,
                           help="entropy weight making the target equilibrium interior")
            p.add_argument("--lambdas", type=float, nargs="+", help="lambda grid")
            p.add_argument("--radius", type=float, help="ball radius for the Lipschitz estimate")
            p.add_argument("--lipschitz-samples", type=int, help="points in that ball")
            p.add_argument("--target-prob", type=float,
                           help="Newton start: p(action 0) of the target equilibrium")
        p.set_defaults(func=lambda a, n=name: run(n, a))
    d = tsub.add_parser("demo", help="small paired comparison: ablation table + basin map")
    d.add_argument("--out", type=Path, default=Path("demo_out"))
    d.add_argument("--seeds", type=int, default=40)
    d.set_defaults(func=lambda a: _demo(vars(a)))
    c = tsub.add_parser("convergence", help="MATRL's Table 1: IGA, IGA-PP, WoLF and MATRL "
                        "on random 2x2 games",
                        description="Random coordination / anti-coordination / cyclic 2x2 "
                        "games (MATRL's generator), each learner from (0.9, 0.2) for at most "
                        "--iters iterations; convergence rate and mean step per type, beside "
                        "the paper's Table 1. See docs/matrl.md.")
    c.add_argument("--games-per-type", type=int, default=1000,
                   help="random games of each type (the paper: 1000)")
    c.add_argument("--dynamics", "--methods", dest="methods", nargs="+", default=None,
                   help="Table 1's two-player gradient dynamics (not registry methods), "
                        "'a b' or 'a,b' (default: iga iga_pp matrl wolf iga_br "
                        "iga_pp_clipped matrl_no_br il_pp); "
                        "--methods is its older name")
    c.add_argument("--choice", default="last",
                   help="meta-game equilibrium when several: last (public code), first, "
                        "random (the paper's wording)")
    c.add_argument("--iters", type=int, default=1000, help="iterations per game")
    c.add_argument("--seed", type=int, default=0, help="seed of choice=random")
    c.add_argument("--out", type=Path, required=True, help="output directory")
    c.set_defaults(func=lambda a: _convergence(a))
    se = tsub.add_parser("sampling-error", help="MA-PROPS: joint and per-agent sampling error "
                         "of each sampler on a fixed target",
                         description="A fixed random target per seed; every tabular sampler "
                         "draws --samples joint actions; TV against the target after each "
                         "draw. See docs/samplers.md.")
    se.add_argument("--game", default="no_conflict_1", help="normal-form game (2 or 3 "
                    "actions per player)")
    se.add_argument("--samples", type=int, default=400)
    se.add_argument("--seeds", type=int, default=10)
    _sampling_outputs(se, "sampling-error")
    sm = tsub.add_parser("samplers", help="MA-PROPS: success rate of independent PPO with "
                         "each sampler on paired seeds",
                         description="Independent PPO (MA-PROPS's matrix-game settings) with "
                         "each tabular sampler; success rate per game with Wilson CIs and "
                         "McNemar tests against on-policy sampling. See docs/samplers.md.")
    _learning_options(sm, "no_conflict_1..21, climbing, penalty, climbing_modified", 200)
    _sampling_outputs(sm, "samplers")
    tu = tsub.add_parser("samplers-tune", help="MA-PROPS: its behaviour-update grid "
                         "(lr x m x eps) on paired seeds; the best setting per game size",
                         description="Runs MA-PROPS's own sweep grid with the independent-"
                         "PPO learner of `samplers` and picks, per game size, the setting "
                         "with the highest mean success rate. See docs/samplers.md.")
    _learning_options(tu, "no_conflict_19..21, climbing, climbing_modified, penalty", 64)
    tu.add_argument("--sampler", default="ma_props", help="props or ma_props")
    tu.add_argument("--lr", nargs="+", default=None, help="behaviour step sizes "
                    "(default: 0.3 0.03 0.003)")
    tu.add_argument("--every", nargs="+", default=None, help="update intervals m "
                    "(default: 1 4)")
    tu.add_argument("--clip", nargs="+", default=None, help="clip eps (default: 0.3 1 10)")
    tu.add_argument("--out", type=Path, required=True, help="output directory")
    tu.set_defaults(func=lambda a: _sampler_tuning(a))
    at = tsub.add_parser("atlas", help="alignment atlas: mu, mu_M, certified radii over tau "
                         "and games, against the peer arm's basin gain",
                         description="At the target equilibrium of Stag Hunt (temptation "
                         "swept) and the 21 no-conflict games, for each entropy temperature: "
                         "mu, mu_M (peer, own, both), rho_0 and rho_lambda; per game the peer "
                         "arm's basin gain over PG and the cosine proxy; a precision study of "
                         "mu_M at Stag Hunt, tau=0.2. See docs/comparison.md.")
    at.add_argument("--taus", nargs="+", default=None,
                    help="temperatures (default: 0.05 0.1 0.2 0.3 0.4 0.8)")
    at.add_argument("--grid", type=int, default=11, help="basin grid points per player")
    at.add_argument("--lipschitz-samples", type=int, default=10,
                    help="points in the ball for the Lipschitz estimate")
    at.add_argument("--max-games", type=int, default=None, help="only the first N games")
    at.add_argument("--out", type=Path, required=True, help="output directory")
    at.set_defaults(func=lambda a: _atlas(a))
    g = tsub.add_parser("games", help="list the built-in games")
    g.set_defaults(func=lambda a: _games())


def _sampling_outputs(parser, which: str) -> None:
    """``--samplers`` and ``--out`` of the two sampler experiments, and their runner."""
    tabular_samplers = ", ".join(sampler_names("tabular"))
    parser.add_argument("--samplers", nargs="+", default=None,
                        help=f"samplers, 'a b' or 'a,b' (default: all of {tabular_samplers})")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.set_defaults(func=lambda a: _sampling(which, a))


def _learning_options(parser, default_games: str, seeds: int) -> None:
    """``--games``, ``--seeds`` and ``--steps`` of the samplers' learning experiments."""
    parser.add_argument("--games", nargs="+", default=None,
                        help=f"normal-form games (default: {default_games})")
    parser.add_argument("--seeds", type=int, default=seeds)
    parser.add_argument("--steps", type=int, default=None,
                        help="env steps (default: 100 target updates)")


def _convergence(args) -> int:
    from rllib_metamapg.tabular_experiments import convergence

    methods = list_option(args.methods) if args.methods else list(convergence.DEFAULT_METHODS)
    try:
        convergence.check(args.games_per_type, methods, args.choice, args.iters)
        out = atomic.check_output_dir(args.out)
    except (convergence.ConvergenceError, atomic.OutputError) as err:
        raise OptionsError(str(err)) from None
    report = _progress("convergence")
    doc = convergence.run_convergence(args.games_per_type, methods, args.choice, args.iters,
                                      args.seed, progress=lambda m, i, n: report(i, n))
    convergence.write_convergence(doc, out)
    print(convergence.format_table(doc))
    print(f"wrote {out / 'convergence.json'}, convergence.csv, convergence.png")
    return 0


def _atlas(args) -> int:
    from rllib_metamapg.tabular_experiments import atlas
    from rllib_metamapg.tabular.settings import settings_class

    try:
        taus = ([float(t) for t in list_option(args.taus)] if args.taus else list(atlas.TAUS))
    except ValueError:
        raise OptionsError(f"--taus: {args.taus!r} are not numbers.") from None
    try:
        atlas.check(taus, args.grid, args.lipschitz_samples, args.max_games)
        out = atomic.check_output_dir(args.out)
    except (ValueError, atomic.OutputError) as err:
        raise OptionsError(str(err)) from None
    doc = atlas.run_atlas(settings_class()(), taus, args.grid, THRESHOLD, 1.0, 0.5,
                          args.lipschitz_samples, 0, out, progress=_progress("atlas"),
                          max_games=args.max_games)
    print(atlas.format_table(doc))
    p = doc["precision_stag_hunt"]
    print(f"Stag Hunt tau=0.2: mu_M(peer) exact float64 {p['mu_M_peer_exact64']:.6g}, "
          f"float32 {p['mu_M_peer_exact32']:.6g}, finite differences "
          + ", ".join(f"h={f['h']:g}: {f['mu_M_peer']:.6g}" for f in p["finite_differences"]))
    print(f"tracking (Spearman over games): {doc['tracking']}")
    print(f"wrote {out / 'atlas.json'}, atlas.csv, atlas.md, atlas.png")
    return 0


def _sampling(which: str, args) -> int:
    from rllib_metamapg.tabular_experiments import sampling

    samplers = list_option(args.samplers) if args.samplers else list(sampling.SAMPLERS)
    report = _progress(which)
    try:
        out = atomic.check_output_dir(args.out)
        if which == "sampling-error":
            doc = sampling.run_sampling_error(args.game, args.samples, args.seeds, samplers,
                                              progress=report)
        else:
            games = (list_option(args.games) if args.games else
                     [f"no_conflict_{k}" for k in range(1, 22)]
                     + ["climbing", "climbing_modified", "penalty"])
            doc = sampling.run_samplers(games, args.seeds, _env_steps(args.steps, games),
                                        samplers,
                                        progress=report)
    except (sampling.SamplingError, atomic.OutputError) as err:
        raise OptionsError(str(err)) from None
    if which == "sampling-error":
        sampling.write_sampling_error(doc, out)
        for kind, row in doc["samplers"].items():
            print(f"{kind:>10}: joint TV {row['joint'][-1]:.4f}, agent 0 TV "
                  f"{row['agent_0'][-1]:.4f} after {doc['samples']} samples")
        print(f"wrote {out / 'sampling_error.json'}, sampling_error.csv, sampling_error.png")
    else:
        sampling.write_samplers(doc, out)
        print(sampling.format_table(doc))
        print(f"wrote {out / 'samplers.json'}, samplers.csv, samplers.png")
    return 0


def _env_steps(steps, games):
    """The samplers' env steps; a smoke run (METAMAPG_SMOKE) takes two target updates."""
    if not limits.smoke():
        return steps
    from rllib_metamapg.tabular_experiments.sampling import smoke_steps

    return smoke_steps(games)


def _sampler_tuning(args) -> int:
    from rllib_metamapg.tabular_experiments import sampler_tuning as tuning
    from rllib_metamapg.tabular_experiments.sampling import SamplingError

    grid = {}
    try:
        for key, cast in (("lr", float), ("every", int), ("clip", float)):
            given = getattr(args, key)
            try:
                grid[key] = (tuple(cast(v) for v in list_option(given)) if given
                             else tuning.GRID[key])
            except ValueError:
                raise SamplingError(f"--{key}: {given!r} are not numbers.") from None
        tuning.check_grid(grid)
        games = list_option(args.games) if args.games else list(tuning.DEFAULT_GAMES)
        out = atomic.check_output_dir(args.out)
        report = _progress("samplers-tune")
        doc = tuning.run_tuning(games, args.seeds, args.sampler, grid,
                                _env_steps(args.steps, games),
                                progress=report)
    except (SamplingError, atomic.OutputError) as err:
        raise OptionsError(str(err)) from None
    tuning.write_tuning(doc, out)
    print(tuning.format_table(doc))
    print(f"wrote {out / 'samplers_tune.json'}, samplers_tune.csv, samplers_tune.png")
    return 0


def _games() -> int:
    for name in list_games():
        desc = GAMES[name].describe()
        extra = f" horizon={desc.get('horizon')} discount={desc.get('discount')}" \
            if desc["kind"] == "memory_one" else ""
        print(f"{name:<22} {desc['kind']}{extra}")
    return 0


def run(name: str, args: argparse.Namespace) -> int:
    defaults, fn, _ = COMMANDS[name]
    values = resolve(args, dict(paper_defaults(), **defaults))
    try:
        threads.configure()  # the cores idle now, so a busy machine does not stall us
    except ValueError as err:
        raise OptionsError(str(err)) from None
    return fn(values)

