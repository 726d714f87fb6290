"""Every measured figure in the docs is rendered from the JSON that measured it.

A figure is written in Markdown as

    <span data-json="benchmarks/results/compare.json#results.compare_full_s"
    data-fmt="{:.0f} s">198 s</span>

(on one line in the Markdown)

``make docs`` (``python -m rllib_metamapg.doc_figures --write``) rewrites the text
between the tags from the JSON; ``--check`` (and the test suite) fails when the
committed docs differ from what the JSON renders, so a re-measured benchmark
cannot leave a stale figure behind, and a figure cannot drift from its source.

Key paths are dotted; a segment ``name[k=v]`` picks the list element whose ``k``
equals ``v`` (compared as text; ``[k=v&k2=w]`` both), ``name[3]`` the element at
index 3.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

ROOT = Path(__file__).resolve().parents[1]
SPAN = re.compile(r'<span data-json="(?P<src>[^"#]+)#(?P<key>[^"]+)"'
                  r'(?: data-fmt="(?P<fmt>[^"]*)")?>(?P<text>[^<]*)</span>')
_SEGMENT = re.compile(r"(?P<name>[^.\[\]]+)?(?P<sel>(\[[^\]]+\])*)")


class FigureError(ValueError):
    """A figure whose JSON, key or format cannot be rendered; names the doc and line."""


def documents(root: Path = ROOT) -> List[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md")),
            root / "cluster" / "README.md"]


def lookup(doc: Any, key: str) -> Any:
    value = doc
    for part in key.split("."):
        m = _SEGMENT.fullmatch(part)
        if m is None:
            raise KeyError(part)
        if m.group("name"):
            value = value[m.group("name")]
        for sel in re.findall(r"\[([^\]]+)\]", m.group("sel") or ""):
            if "=" in sel:
                conds = [c.split("=", 1) for c in sel.split("&")]
                matches = [x for x in value if isinstance(x, dict)
                           and all(str(x.get(k)) == v for k, v in conds)]
                if len(matches) != 1:
                    raise KeyError(f"[{sel}] matches {len(matches)} elements")
                value = matches[0]
            else:
                value = value[int(sel)]
    return value


def render_text(text: str, root: Path = ROOT, where: str = "") -> Tuple[str, int]:
    """``text`` with every figure re-rendered; returns ``(new text, figures)``."""
    cache: Dict[str, Any] = {}
    count = 0

    def one(m: re.Match) -> str:
        nonlocal count
        src, key, fmt = m.group("src"), m.group("key"), m.group("fmt") or "{}"
        line = text[:m.start()].count("\n") + 1
        try:
            if src not in cache:
                cache[src] = json.loads((root / src).read_text())
            value = fmt.format(lookup(cache[src], key))
        except (OSError, json.JSONDecodeError) as err:
            raise FigureError(f"{where}:{line}: {src}: {err}") from None
        except (KeyError, IndexError, TypeError, ValueError) as err:
            raise FigureError(f"{where}:{line}: {src}#{key} (format {fmt!r}): {err}") from None
        count += 1
        attrs = f'data-json="{src}#{key}"' + (f' data-fmt="{m.group("fmt")}"'
                                               if m.group("fmt") is not None else "")
        return f"<span {attrs}>{value}</span>"

    return SPAN.sub(one, text), count


def stale(root: Path = ROOT) -> List[str]:
    """Docs whose figures differ from their JSON (``path: rendered figures``)."""
    out = []
    for doc in documents(root):
        if not doc.is_file():
            continue
        text = doc.read_text()
        new, _ = render_text(text, root, str(doc.relative_to(root)))
        if new != text:
            out.append(str(doc.relative_to(root)))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rllib_metamapg.doc_figures",
                                 description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 if any doc is stale")
    mode.add_argument("--write", action="store_true", help="re-render the docs' figures")
    args = ap.parse_args(argv)
    try:
        if args.check:
            bad = stale()
            for doc in bad:
                print(f"{doc}: figures differ from their JSON; run 'make docs'", file=sys.stderr)
            return 1 if bad else 0
        from rllib_metamapg.atomic import write_text

        for doc in documents():
            if doc.is_file():
                text = doc.read_text()
                new, n = render_text(text, ROOT, str(doc.relative_to(ROOT)))
                if new != text:
                    write_text(doc, new)
                print(f"{doc.relative_to(ROOT)}: {n} figures")
    except FigureError as err:
        print(f"doc_figures: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
