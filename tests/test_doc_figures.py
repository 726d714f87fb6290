"""Measured figures in the docs are rendered from their result JSON and cannot drift."""

import json
import re
import shutil

import pytest

from rllib_metamapg import doc_figures
from rllib_metamapg.doc_figures import ROOT, FigureError, lookup, render_text, stale


def test_committed_docs_equal_what_their_json_renders():
    assert stale() == [], "run 'make docs' to re-render the figures from their JSON"


def test_every_benchmark_and_study_json_is_rendered_somewhere():
    text = "\n".join(d.read_text() for d in doc_figures.documents() if d.is_file())
    sources = set(re.findall(r'data-json="([^"#]+)#', text))
    wanted = {str(p.relative_to(ROOT)) for p in (ROOT / "benchmarks" / "results").glob("*.json")}
    wanted |= {str(p.relative_to(ROOT))
               for p in (ROOT / "docs" / "neural_study").glob("*/report.json")}
    wanted.add("docs/compare_rllib/summary.json")  # the RLlib comparison (comparison.md)
    assert wanted <= sources, sorted(wanted - sources)


def test_a_changed_json_makes_the_docs_stale(tmp_path):
    shutil.copytree(ROOT / "docs" / "neural_study", tmp_path / "docs" / "neural_study")
    shutil.copytree(ROOT / "benchmarks", tmp_path / "benchmarks")
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    assert stale(tmp_path) == []
    learner = tmp_path / "benchmarks/results/learner.json"
    doc = json.loads(learner.read_text())
    row = lookup(doc, "results[agents=2].rows[arm=meta_mapg]")
    row["ratio_to_ippo"] += 0.5
    learner.write_text(json.dumps(doc))
    assert stale(tmp_path) == ["README.md"]


def test_lookup_selectors_and_errors(tmp_path):
    doc = {"rows": [{"a": 1, "b": "x", "v": 2.5}, {"a": 1, "b": "y", "v": 3.0}]}
    assert lookup(doc, "rows[a=1&b=y].v") == 3.0 and lookup(doc, "rows[0].v") == 2.5
    with pytest.raises(KeyError, match="matches 2"):
        lookup(doc, "rows[a=1].v")
    (tmp_path / "r.json").write_text(json.dumps(doc))
    text = 'x <span data-json="r.json#rows[b=x].v" data-fmt="{:.2f} s">old</span> y'
    assert render_text(text, tmp_path)[0] == text.replace("old", "2.50 s")
    with pytest.raises(FigureError, match="doc.md:1"):
        render_text(text.replace("b=x", "b=z"), tmp_path, "doc.md")
