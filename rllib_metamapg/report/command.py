"""``metamapg report``: argument parsing."""

from __future__ import annotations

from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser(
        "report", help="tables, paired tests and figures for sweep folders",
        description="Per environment: App. F final-return table per arm, learner counts at "
                    "tau with Wilson 95%% CIs, median first-hit step, McNemar and Wilcoxon "
                    "signed-rank tests against the reference arm (plain PG) on paired seeds, "
                    "learning curves with bootstrap bands and per-seed strip plots "
                    "(Markdown, CSV, PNG, JSON).")
    p.add_argument("sweeps", nargs="+", metavar="SWEEP_DIR",
                   help="folders printed by 'metamapg sweep'")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--tau", type=float, default=None,
                   help="learner threshold (default: the env's tau from the sweep)")
    p.add_argument("--allow-trivial-tau", action="store_true",
                   help="accept a tau that random play already reaches, or tau = 0 with "
                        "non-negative returns")
    p.set_defaults(func=_report)


def _report(args) -> int:
    from rllib_metamapg.atomic import check_output_dir
    from rllib_metamapg.report.write import write_report

    check_output_dir(args.out)  # before the sweeps are read
    doc = write_report(args.sweeps, args.out, args.tau, args.allow_trivial_tau)
    print((Path(args.out) / "report.md").read_text())
    print(f"wrote {args.out}/report.md, summary.csv, seeds.csv, report.json and figures "
          f"for {', '.join(r['env'] for r in doc['results'])}")
    return 0
