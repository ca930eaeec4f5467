"""posture.html: one self-contained page (no scripts, no external assets)."""

from __future__ import annotations

import json

from jinja2 import Environment

from aidrill._json import JsonDocument

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Configuration posture — {{ p.system }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#1d2330;max-width:72rem}
table{border-collapse:collapse;width:100%;margin:1rem 0}
th,td{border:1px solid #cfd6e3;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#eef2f8}
.pass{color:#17693a;font-weight:600}.fail{color:#b3261e;font-weight:600}
.unknown{color:#8a5a00;font-weight:600}
details pre{white-space:pre-wrap;font-size:.8rem;background:#f6f8fb;padding:.5rem}
</style></head><body>
<h1>Configuration posture</h1>
<p>{{ p.system }} · AWS account {{ p.account }} · checked {{ p.checked_at }} · {{ p.tool }}</p>
<p>{{ p.counts.pass }} passed, {{ p.counts.fail }} failed, {{ p.counts.unknown }} unknown.
Estimates are conservative bounds implied by configuration; drills measure what is
achieved.</p>
<h2>Per component</h2>
<table><tr><th>Component</th><th>Tier</th><th>Estimated RTO</th><th>Estimated RPO</th>
<th>Failed checks</th><th>Unknown</th></tr>
{% for c in p.components %}<tr><td>{{ c.name }}</td><td>{{ c.tier }}</td>
<td>{{ c.estimate.rto }}</td><td>{{ c.estimate.rpo }}</td>
<td>{{ c.failed | join(", ") or "none" }}</td><td>{{ c.unknown | join(", ") or "none" }}</td>
</tr>{% endfor %}</table>
<h2>Checks</h2>
<table><tr><th>Check</th><th>Result</th><th>Why</th><th>Calls and evidence</th></tr>
{% for c in p.checks %}<tr><td>{{ c.id }}<br><small>{{ c.title }}</small></td>
<td class="{{ c.status }}">{{ c.status }}</td><td>{{ c.why }}</td>
<td><details><summary>{{ c.calls | length }} call(s)</summary>
<pre>{{ c.calls | join("\\n") }}</pre><pre>{{ evidence(c.evidence) }}</pre></details></td>
</tr>{% endfor %}</table>
</body></html>
"""

_ENV = Environment(autoescape=True)


def posture_html(posture: JsonDocument) -> str:
    template = _ENV.from_string(_PAGE)
    return template.render(p=posture, evidence=lambda e: json.dumps(e, indent=1, default=str))
