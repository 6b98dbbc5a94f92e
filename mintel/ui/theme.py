"""The dashboards' look: one dark, dense stylesheet and a matching plotly template.

Every view puts ``style()`` first in its box, so a view looks the same in Voilà (``--theme=dark``),
in JupyterLab's light or dark theme and in an exported report.
"""

from __future__ import annotations

from functools import lru_cache

BG = "#0b0f14"
PANEL = "#121821"
GRID = "#1f2a36"
TEXT = "#d7dde5"
MUTED = "#7f8c9a"
ACCENT = "#f0a020"  # the terminal amber
UP = "#26a269"
DOWN = "#e0443e"
NEW = "#2b3f1e"

CSS = f"""
.mintel {{ background:{BG}; color:{TEXT}; font-family: 'DejaVu Sans Mono', Menlo, Consolas, monospace;
          font-size:12px; padding:6px; }}
.mintel .widget-label, .mintel label, .mintel .widget-html-content {{ color:{TEXT}; font-size:12px; }}
.mintel h2 {{ color:{ACCENT}; font-size:15px; margin:2px 0 6px 0; letter-spacing:.5px; }}
.mintel .m-bar {{ display:flex; gap:14px; align-items:baseline; color:{MUTED}; }}
.mintel .m-bar b {{ color:{TEXT}; }}
.mintel .m-stale {{ color:#111; background:{ACCENT}; padding:0 6px; font-weight:bold; }}
.mintel .m-error {{ color:#fff; background:{DOWN}; padding:0 6px; }}
.mintel table.m-grid {{ border-collapse:collapse; width:100%; }}
.mintel table.m-grid th {{ position:sticky; top:0; background:{PANEL}; color:{ACCENT}; text-align:right;
          padding:2px 6px; border-bottom:1px solid {GRID}; white-space:nowrap; }}
.mintel table.m-grid td {{ padding:1px 6px; border-bottom:1px solid {GRID}; text-align:right; white-space:nowrap; }}
.mintel table.m-grid th.t, .mintel table.m-grid td.t {{ text-align:left; }}
.mintel table.m-grid tr:hover td {{ background:{PANEL}; }}
.mintel table.m-grid tr.m-new td {{ background:{NEW}; }}
.mintel td.up {{ color:{UP}; }} .mintel td.down {{ color:{DOWN}; }}
.mintel .m-scroll {{ max-height:640px; overflow:auto; }}
.mintel .m-cards {{ display:flex; gap:8px; flex-wrap:wrap; }}
.mintel .m-card {{ background:{PANEL}; border:1px solid {GRID}; padding:4px 10px; min-width:110px; }}
.mintel .m-card .v {{ font-size:18px; color:{TEXT}; }} .mintel .m-card .k {{ color:{MUTED}; font-size:11px; }}
.mintel .m-index a {{ color:{ACCENT}; font-size:14px; }}
"""


def style():
    """An HTML widget carrying the stylesheet (put it in the view's box)."""
    import ipywidgets as w

    return w.HTML(f"<style>{CSS}</style>")


@lru_cache(maxsize=1)
def plotly_template() -> str:
    """Register and return the name of the plotly template matching the stylesheet."""
    import plotly.graph_objects as go
    import plotly.io as pio

    base = pio.templates["plotly_dark"]
    t = go.layout.Template(base)
    t.layout.paper_bgcolor = BG
    t.layout.plot_bgcolor = BG
    t.layout.font = dict(color=TEXT, size=11, family="DejaVu Sans Mono, monospace")
    t.layout.xaxis.gridcolor = GRID
    t.layout.yaxis.gridcolor = GRID
    t.layout.margin = dict(l=40, r=20, t=30, b=30)
    pio.templates["mintel"] = t
    return "mintel"
