"""A lock's demand as an HTML form, for a browser that asks for ``text/html``.

The console renders its own form from the JSON Schema; this is for everyone else: one
field per top-level property (text, number, checkbox, or a select for an ``enum``), and a
few lines of script that post the form as the JSON candidate the node expects, with the
operator token typed into the page (the node never puts a token in a page it serves).
"""

from __future__ import annotations

import html
import json
from typing import Any


def _field(name: str, prop: dict[str, Any], required: bool) -> str:
    label = html.escape(str(prop.get("title") or name))
    help_text = html.escape(str(prop.get("description") or ""))
    kind = prop.get("type")
    attrs = f'name="{html.escape(name)}" data-type="{html.escape(str(kind or "string"))}"'
    if required:
        attrs += " required"
    if "default" in prop and kind != "boolean":
        attrs += f' value="{html.escape(str(prop["default"]))}"'
    if "enum" in prop:
        options = "".join(f"<option>{html.escape(str(v))}</option>" for v in prop["enum"])
        control = f"<select {attrs}>{options}</select>"
    elif kind == "boolean":
        checked = " checked" if prop.get("default") else ""
        control = f'<input type="checkbox" {attrs}{checked}>'
    elif kind in ("number", "integer"):
        step = "1" if kind == "integer" else "any"
        bounds = "".join(
            f' {attr}="{prop[key]}"' for key, attr in (("minimum", "min"), ("maximum", "max"))
            if key in prop
        )
        control = f'<input type="number" step="{step}"{bounds} {attrs}>'
    else:
        control = f'<input type="text" {attrs}>'
    return f"<p><label>{label} {control}</label> <small>{help_text}</small></p>"


SCRIPT = """
document.getElementById('lock').addEventListener('submit', async (e) => {
  e.preventDefault();
  const out = {};
  for (const el of e.target.querySelectorAll('[data-type]')) {
    const t = el.dataset.type;
    if (t === 'boolean') out[el.name] = el.checked;
    else if (el.value === '') continue;
    else if (t === 'number' || t === 'integer') out[el.name] = Number(el.value);
    else out[el.name] = el.value;
  }
  const token = document.getElementById('token').value;
  const r = await fetch(window.location.href, {method: 'POST',
    headers: {'Content-Type': 'application/json', 'Authorization': 'Bearer ' + token},
    body: JSON.stringify(out)});
  document.getElementById('answer').textContent = r.status + ' ' + await r.text();
});
"""


def render(demand: dict[str, Any]) -> str:
    schema = demand.get("schema") or {}
    props: dict[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    fields = "\n".join(_field(n, p, n in required) for n, p in props.items())
    prompt = html.escape(str(demand.get("prompt", "")))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Lock {html.escape(str(demand.get("lid")))}</title>
</head><body>
<h1>{prompt}</h1>
<form id="lock" method="post">
{fields}
<p><label>Operator token <input id="token" type="password" autocomplete="off"></label></p>
<p><button type="submit">Submit</button></p>
</form>
<pre id="answer"></pre>
<details><summary>JSON Schema</summary><pre>{html.escape(json.dumps(schema, indent=2))}</pre>
</details>
<script>{SCRIPT}</script>
</body></html>
"""
