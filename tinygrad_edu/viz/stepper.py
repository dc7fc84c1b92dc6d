"""A self-contained HTML page that steps through a backward pass.

>>> from tinygrad_edu import Value
>>> from tinygrad_edu.viz import explain_backward, stepper_html
>>> x, w = Value(2.0, label="x"), Value(-3.0, label="w")
>>> y = (x * w).tanh(); y.label = "y"
>>> page = stepper_html(explain_backward(y, print_steps=False))  # doctest: +SKIP

The page holds one SVG of the graph (rendered by Graphviz's ``dot``), the steps as JSON and
a small script: previous/next buttons (and the arrow keys) move through the steps, the
current node, op and edge are highlighted, the edges already processed turn green, the
``grad`` fields fill in as the gradients accumulate, and the step's arithmetic
(upstream × local = contribution; the parent's new total) is shown beside the graph.
Nothing is loaded from the network: one file, no CDN.  ``#step=3`` in the URL opens step 3.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from . import _fmt
from .explain import BackwardTrace, Step
from .graph import MAX_NODES, draw_graph, render_svg

__all__ = ["step_lines", "stepper_html", "write_stepper_html"]


def _grad_text(x: Any) -> str:
    """Exactly what the graph's record shows in its grad field."""
    if x is None:
        return "grad —"
    if isinstance(x, np.ndarray):
        return f"grad {_fmt.array_summary(x)}"
    return f"grad {_fmt.num(x)}"


def step_lines(step: Step, root: str) -> list[str]:
    """The arithmetic of one step, as the lines shown beside the graph."""
    up, contrib = _fmt.brief(step.upstream), _fmt.brief(step.contribution)
    root, node, parent = _fmt.wrap(root), _fmt.wrap(step.node), _fmt.wrap(step.parent)
    lines = [f"upstream   ∂{root}/∂{node} = {up}"]
    if step.local is not None:
        local = _fmt.brief(step.local)
        rhs = _fmt.short_formula(step.named_formula or step.formula, 30)
        shown = f"{rhs} = {local}" if rhs and rhs != local else local
        lines.append(f"local      ∂{node}/∂{parent} = {shown}   [{step.op}]")
        lines.append(f"product    {up} × {local} = {contrib}")
    else:
        lines.append(f"local      {step.op}: {step.formula}")
        lines.append(f"product    (vector-Jacobian product) = {contrib}")
    if step.reduction:
        lines.append(f"broadcast  {step.reduction}")
    before = "0" if step.previous is None else _fmt.brief(step.previous)
    lines.append(f"total      {parent}.grad = {before} + {contrib} = {_fmt.brief(step.total)}")
    return lines


def _steps_json(trace: BackwardTrace) -> list[dict[str, Any]]:
    return [
        {
            "title": f"{s.node} → {s.parent}  ({s.op}, input {s.parent_index + 1})",
            "lines": step_lines(s, trace.root_name),
            "node": s.node_id,
            "op": f"{s.node_id}_op",
            "parent": s.parent_id,
            "edge": s.edge_id,
            "grad": _grad_text(s.total),
        }
        for s in trace.steps
    ]


def _initial_grads(trace: BackwardTrace) -> dict[str, str]:
    """Each node's grad field before the first step (the output holds the seed)."""
    order = trace.root.topological_order()
    ids = _fmt.node_ids(order)
    grads = {ids[n]: _grad_text(trace.initial.get(ids[n])) for n in order}
    grads[ids[trace.root]] = _grad_text(trace.seed)
    return grads


_SVG_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.DOTALL)


def _inline_svg(svg: str) -> str:
    """Graphviz's SVG without the XML prologue, DOCTYPE and comments, ready to inline."""
    svg = _SVG_PROLOGUE.sub("", svg, count=1)
    return re.sub(r"<!--.*?-->", "", svg, flags=re.DOTALL)


def _script_json(data: Any) -> str:
    """JSON safe to put inside a ``<script>`` element."""
    return json.dumps(data, ensure_ascii=False).replace("</", "<\\/")


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, sans-serif; margin: 0;
       color: #0f172a; background: #f8fafc; }
header { padding: 10px 18px; background: #1e293b; color: white; }
header h1 { font-size: 18px; margin: 0; }
#stepper { display: flex; flex-direction: column; gap: 12px; padding: 12px 18px; }
#graph { background: white; border: 1px solid #cbd5e1; border-radius: 8px; padding: 8px;
         overflow: auto; text-align: center; }
#graph svg { max-width: 100%; height: auto; }
#panel { display: flex; flex-wrap: wrap; gap: 8px 24px; align-items: flex-start; }
#panel > div { flex: 1 1 420px; }
#controls button { font-size: 15px; padding: 6px 14px; margin-right: 4px; cursor: pointer; }
#counter { font-weight: bold; margin-left: 8px; }
#title { font-size: 17px; margin: 10px 0 0; color: #b91c1c; min-height: 1.3em; }
#arithmetic { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 14px;
              background: white; border: 1px solid #cbd5e1; border-radius: 8px;
              padding: 10px; white-space: pre-wrap; min-height: 6.5em; margin: 0; }
#legend { font-size: 13px; color: #475569; margin-top: 10px; }
#legend span { display: inline-block; width: 12px; height: 12px; border-radius: 3px;
               vertical-align: middle; margin: 0 4px 0 10px; }
table.steps { border-collapse: collapse; font-size: 12px; margin: 0 18px 24px; }
table.steps td, table.steps th { border-bottom: 1px solid #e2e8f0; padding: 3px 8px;
                                 text-align: left; font-family: ui-monospace, monospace; }
table.steps tr { cursor: pointer; }
table.steps tr.current { background: #fee2e2; }
g.done path { stroke: #16a34a; }
g.done polygon { stroke: #16a34a; fill: #16a34a; }
g.done text { fill: #15803d; }
g.hl-edge path { stroke: #dc2626; stroke-width: 3.5; }
g.hl-edge polygon { stroke: #dc2626; fill: #dc2626; }
g.hl-edge text { fill: #dc2626; font-weight: bold; }
g.hl-node path, g.hl-node polygon, g.hl-node ellipse { stroke: #ea580c; stroke-width: 3; }
g.hl-op ellipse, g.hl-op polygon { stroke: #dc2626; stroke-width: 3; fill: #fca5a5; }
g.hl-parent path, g.hl-parent polygon { stroke: #dc2626; stroke-width: 3; fill: #fee2e2; }
g.hl-parent text { font-weight: bold; }
"""

_JS = """
(function () {
  const steps = JSON.parse(document.getElementById('steps-data').textContent);
  const start = JSON.parse(document.getElementById('start-data').textContent);
  const root = document.getElementById('stepper');
  const el = (id) => (id ? document.getElementById(id) : null);
  const classes = ['hl-edge', 'hl-node', 'hl-op', 'hl-parent', 'done'];
  let current = 0;

  function gradText(id) {
    const g = el(id);
    if (!g) return null;
    for (const t of g.querySelectorAll('text')) {
      if (t.textContent.startsWith('grad ')) return t;
    }
    return null;
  }
  function setGrad(id, text) {
    const t = gradText(id);
    if (t) t.textContent = text;
  }
  function mark(id, cls) {
    const g = el(id);
    if (g) g.classList.add(cls);
  }
  function show(k) {
    current = Math.max(0, Math.min(steps.length, k));
    for (const cls of classes) {
      for (const g of Array.from(document.querySelectorAll('.' + cls))) g.classList.remove(cls);
    }
    for (const id in start.grads) setGrad(id, start.grads[id]);
    for (let i = 0; i < current; i++) {
      setGrad(steps[i].parent, steps[i].grad);
      if (i < current - 1) mark(steps[i].edge, 'done');
    }
    const title = el('title'), arithmetic = el('arithmetic');
    if (current === 0) {
      mark(start.root, 'hl-node');
      title.textContent = start.title;
      arithmetic.textContent = start.lines.join('\\n');
    } else {
      const s = steps[current - 1];
      mark(s.edge, 'hl-edge'); mark(s.node, 'hl-node'); mark(s.op, 'hl-op');
      mark(s.parent, 'hl-parent');
      title.textContent = 'Step ' + current + ': ' + s.title;
      arithmetic.textContent = s.lines.join('\\n');
    }
    el('counter').textContent = 'step ' + current + ' / ' + steps.length;
    root.dataset.step = String(current);
    el('prev').disabled = current === 0;
    el('next').disabled = current === steps.length;
    for (const row of document.querySelectorAll('table.steps tbody tr')) {
      row.classList.toggle('current', Number(row.dataset.step) === current);
    }
  }
  el('prev').addEventListener('click', () => show(current - 1));
  el('next').addEventListener('click', () => show(current + 1));
  el('first').addEventListener('click', () => show(0));
  el('last').addEventListener('click', () => show(steps.length));
  for (const row of document.querySelectorAll('table.steps tbody tr')) {
    row.addEventListener('click', () => show(Number(row.dataset.step)));
  }
  document.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowRight' || e.key === 'ArrowDown') { show(current + 1); e.preventDefault(); }
    else if (e.key === 'ArrowLeft' || e.key === 'ArrowUp') { show(current - 1); e.preventDefault(); }
    else if (e.key === 'Home') show(0);
    else if (e.key === 'End') show(steps.length);
  });
  const m = /step=(\\d+)/.exec(window.location.hash);
  show(m ? Number(m[1]) : 0);
})();
"""


def _steps_table(trace: BackwardTrace) -> str:
    rows = trace.rows()
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "\n".join(
        f'<tr data-step="{r[0]}">' + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
        for r in rows[1:]
    )
    return f'<table class="steps"><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>'


def stepper_html(trace: BackwardTrace, title: str | None = None,
                 max_nodes: int = MAX_NODES) -> str:
    """The stepper page for ``trace`` as one HTML string (needs Graphviz's ``dot``)."""
    svg = _inline_svg(render_svg(draw_graph(trace.root, max_nodes=max_nodes)))
    root_id = _fmt.node_ids(trace.root.topological_order())[trace.root]
    seed = _fmt.brief(trace.seed)
    start = {
        "root": root_id,
        "grads": _initial_grads(trace),
        "title": f"Start: backward from {trace.root_name}",
        "lines": [(f"seed       ∂{_fmt.wrap(trace.root_name)}/∂{_fmt.wrap(trace.root_name)} = "
                  f"{seed}"),
                  (f"{_fmt.count(len(trace.steps), 'step')} follow{'s' if len(trace.steps) == 1 else ''}, one per edge, in the order backward "
                  "runs them."), "Press → (or Next) to take the first step."],
    }
    heading = html.escape(title or f"Backward pass of {trace.root_name}, step by step")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{heading}</title>
<style>{_CSS}</style>
</head>
<body>
<header><h1>{heading}</h1></header>
<main id="stepper" data-step="0">
<div id="panel">
<div>
<div id="controls">
<button id="first" title="first (Home)">« First</button>
<button id="prev" title="previous (←)">◀ Prev</button>
<button id="next" title="next (→)">Next ▶</button>
<button id="last" title="last (End)">Last »</button>
<span id="counter"></span>
</div>
<div id="title"></div>
<div id="legend"><span style="background:#dc2626"></span>current edge
<span style="background:#ea580c"></span>gradient comes from
<span style="background:#fee2e2;border:1px solid #dc2626"></span>gradient goes to
<span style="background:#16a34a"></span>done &nbsp; (keys: ← →)</div>
</div>
<pre id="arithmetic"></pre>
</div>
<div id="graph">
{svg}
</div>
</main>
{_steps_table(trace)}
<script type="application/json" id="steps-data">{_script_json(_steps_json(trace))}</script>
<script type="application/json" id="start-data">{_script_json(start)}</script>
<script>{_JS}</script>
</body>
</html>
"""


def write_stepper_html(trace: BackwardTrace, path: str | Path, title: str | None = None,
                       max_nodes: int = MAX_NODES) -> Path:
    """Write the stepper page for ``trace`` to ``path`` (one self-contained file)."""
    path = Path(path)
    path.write_text(stepper_html(trace, title, max_nodes), encoding="utf-8")
    return path
