"""Render a drift report as one self-contained HTML page with inline SVG histograms."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

WIDTH = 480
HEIGHT = 160
REFERENCE_COLOUR = "#4c78a8"
CURRENT_COLOUR = "#f58518"

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px;color:#222}
h1{font-size:1.4rem} h2{font-size:1.1rem;margin-top:2rem}
.verdict{display:inline-block;padding:.2rem .6rem;border-radius:.3rem;color:#fff;font-weight:600}
.drift{background:#c0392b} .no_drift{background:#27ae60} .insufficient_data{background:#7f8c8d}
table{border-collapse:collapse;margin:.5rem 0} td,th{border:1px solid #ccc;padding:.2rem .5rem;
text-align:right} th{background:#f4f4f4} td.name{text-align:left}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 1rem}
"""


def _bars(series: Sequence[tuple[Sequence[float], str]], labels: Sequence[str], title: str) -> str:
    """An SVG bar chart: one group per position, one bar per series (values are proportions)."""
    count = len(labels)
    top = max([max(values, default=0.0) for values, _ in series] + [1e-9])
    group = (WIDTH - 40) / max(count, 1)
    bar = group / (len(series) + 0.5)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT + 30}" '
        f'role="img" aria-label="{escape(title)}">',
        f'<line x1="30" y1="{HEIGHT}" x2="{WIDTH - 10}" y2="{HEIGHT}" stroke="#888"/>',
        f'<text x="2" y="12" font-size="10">{top:.2f}</text>',
    ]
    for s, (values, colour) in enumerate(series):
        for i, value in enumerate(values):
            height = (HEIGHT - 15) * value / top
            x = 30 + i * group + s * bar
            parts.append(
                f'<rect x="{x:.1f}" y="{HEIGHT - height:.1f}" width="{bar:.1f}" '
                f'height="{height:.1f}" fill="{colour}" fill-opacity="0.8">'
                f"<title>{escape(labels[i])}: {value:.4f}</title></rect>"
            )
    step = max(count // 8, 1)
    for i in range(0, count, step):
        parts.append(
            f'<text x="{30 + i * group:.1f}" y="{HEIGHT + 14}" font-size="10">'
            f"{escape(labels[i])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _format(value: Any) -> str:
    """A table cell: numbers with four significant digits."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return escape(str(value))


def _feature_section(name: str, result: dict[str, Any]) -> str:
    """Histogram and statistics of one feature."""
    histogram = result["histogram"]
    edges = histogram["edges"]
    labels = [f"{edge:.2f}" for edge in edges[:-1]]
    chart = _bars(
        [(histogram["reference"], REFERENCE_COLOUR), (histogram["current"], CURRENT_COLOUR)],
        labels,
        f"{name}: reference vs current",
    )
    keys = ("psi", "ks_statistic", "ks_p_adjusted", "wasserstein_norm")
    cells = "".join(f"<td>{_format(result[key])}</td>" for key in keys)
    verdict = "drift" if result["drifted"] else "no_drift"
    return (
        f'<h2>{escape(name)} <span class="verdict {verdict}">{verdict}</span></h2>{chart}'
        "<table><tr><th>PSI</th><th>KS D</th><th>KS p (adjusted)</th><th>Wasserstein/std</th>"
        f"<th>reference mean</th><th>current mean</th></tr><tr>{cells}"
        f"<td>{_format(result['reference']['mean'])}</td>"
        f"<td>{_format(result['current']['mean'])}</td></tr></table>"
        f"<p>{escape('; '.join(result['reasons']))}</p>"
    )


def _label_section(labels: dict[str, Any]) -> str:
    """Predicted-label distribution against the training labels."""
    names = list(labels["reference"])
    ref_total = max(sum(labels["reference"].values()), 1)
    cur_total = max(sum(labels["current"].values()), 1)
    chart = _bars(
        [
            ([labels["reference"][n] / ref_total for n in names], REFERENCE_COLOUR),
            ([labels["current"][n] / cur_total for n in names], CURRENT_COLOUR),
        ],
        names,
        "label distribution",
    )
    verdict = "drift" if labels["drifted"] else "no_drift"
    return (
        f'<h2>Predicted labels <span class="verdict {verdict}">{verdict}</span></h2>{chart}'
        f"<p>{escape('; '.join(labels['reasons']))}</p>"
    )


def render_html(report: dict[str, Any]) -> str:
    """The whole report page (no external resources)."""
    verdict = report["verdict"]
    model = report.get("model", {})
    rows = "".join(
        f'<tr><td class="name">{escape(str(k))}</td><td>{_format(v)}</td></tr>'
        for k, v in {**report["counts"], **report.get("window", {})}.items()
    )
    thresholds = "".join(
        f'<tr><td class="name">{escape(k)}</td><td>{_format(v)}</td></tr>'
        for k, v in report["thresholds"].items()
    )
    body = [
        f"<h1>Drift report: {escape(str(model.get('name', '')))} version "
        f"{escape(str(model.get('version', '')))} "
        f"({escape(str(model.get('feature_mode', 'exact')))} features)</h1>",
        f'<p><span class="verdict {verdict}">{verdict}</span> {escape(report["summary"])}</p>',
        '<p class="legend"><span style="background:' + REFERENCE_COLOUR + '"></span>reference '
        '<span style="background:' + CURRENT_COLOUR + '"></span>current window</p>',
        f"<table>{rows}</table><h2>Thresholds</h2><table>{thresholds}</table>",
    ]
    body += [_feature_section(name, result) for name, result in report["features"].items()]
    if report["labels"]:
        body.append(_label_section(report["labels"]))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>ArtPulse drift report</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def write_html(report: dict[str, Any], path: Path) -> Path:
    """Write the HTML report and return the path."""
    path.write_text(render_html(report), encoding="utf-8")
    return path
