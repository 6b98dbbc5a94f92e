"""Scheduled reports: run a template of ``notebooks/reports`` with papermill, export it to one
self-contained HTML file and list it in the report index.

    run_report("scan_report", "reports/", {"universe": "nifty50", "top_n": "5"})

writes ``reports/<name>.ipynb`` (the executed notebook), ``reports/<name>.html`` (code hidden,
plotly.js embedded: it opens offline) and rewrites ``reports/index.json`` and ``reports/index.html``
(every report, newest first) atomically. A run that fails keeps its notebook in
``reports/failed/<name>.ipynb``, is listed as failed, and raises ``ReportError`` with a one-line reason.

Parameters are checked before a kernel starts: names against the template's ``parameters`` cell,
values parsed to the template's types (never evaluated), the universe and the lake looked up. Keys
never reach a report: a parameter named like a key, token, secret, password or webhook is refused,
and the kernel runs without the ``MINTEL_*`` secrets of the environment (``mintel.ui.serve.SECRET_ENV``).
"""

from __future__ import annotations

import contextlib
import copy
import html
import json
import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mintel.errors import DataError, MintelError
from mintel.ui.serve import SECRET_ENV

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parents[1] / "notebooks" / "reports"
DEFAULT_OUT = Path("reports")
FAILED = "failed"  # sub-directory of the failed runs' notebooks
INDEX_JSON, INDEX_HTML = "index.json", "index.html"
SECRET_NAME = re.compile(r"key|token|secret|passw|webhook|credential", re.IGNORECASE)
KERNEL_TIMEOUT_S = 900  # per cell


class ReportError(MintelError):
    """A report run failed; ``result`` is its (failed) record in the index."""

    exit_code = 1

    def __init__(self, message: str, result: ReportResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class ReportResult:
    """One run of a report, as its row in the index (paths relative to the output directory)."""

    name: str
    notebook: str
    status: str  # "ok" | "failed"
    started_at: str  # ISO 8601 UTC
    duration_s: float
    parameters: dict[str, Any] = field(default_factory=dict)
    headline: dict[str, Any] = field(default_factory=dict)
    html: str | None = None
    ipynb: str | None = None
    error: str | None = None
    out: Path | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def html_path(self) -> Path | None:
        return None if self.html is None or self.out is None else self.out / self.html

    @property
    def ipynb_path(self) -> Path | None:
        return None if self.ipynb is None or self.out is None else self.out / self.ipynb

    def entry(self) -> dict[str, Any]:
        """The index's JSON record."""
        d = asdict(self)
        d.pop("out")
        return d

    def record(self) -> dict[str, Any]:
        """One flat row for the CLI."""
        h = self.headline
        return {"name": self.name, "status": self.status, "notebook": self.notebook,
                "universe": self.parameters.get("universe"), "sentiment": h.get("sentiment"), "label": h.get("label"),
                "top_pick": h.get("top_pick"), "duration_s": self.duration_s,
                "html": str(self.html_path) if self.html_path else None,
                "ipynb": str(self.ipynb_path) if self.ipynb_path else None, "error": self.error}


# ---------------------------------------------------------------------- templates and parameters


def template_path(notebook: str | os.PathLike) -> Path:
    """A bundled template by name (``scan_report``) or a path to an ``.ipynb``."""
    text = str(notebook)
    path = Path(text)
    if path.suffix == ".ipynb" or os.sep in text or "/" in text:
        if not path.is_file():
            raise DataError(f"{text}: no such notebook")
        return path
    bundled = TEMPLATES / f"{text}.ipynb"
    if not bundled.is_file():
        known = ", ".join(sorted(p.stem for p in TEMPLATES.glob("*.ipynb")))
        raise DataError(f"{text}: unknown report (known: {known}; or give a notebook path)")
    return bundled


def template_parameters(path: Path) -> dict[str, dict]:
    """The template's parameters (papermill's inspection of its ``parameters`` cell)."""
    import papermill as pm

    return pm.inspect_notebook(str(path))


def parse_parameters(declared: Mapping[str, dict], given: Mapping[str, Any], where: str = "report") -> dict[str, Any]:
    """``given`` checked against the template: known names only, nothing named like a secret or equal
    to one, and strings (from the command line) parsed to the declared type: int, float, bool, str;
    an untyped parameter (default None) takes the string, or None for ``None``/``null``/empty."""
    secrets = {v for k, v in os.environ.items() if SECRET_ENV.match(k) and len(v) >= 6}
    out = {}
    for name, value in given.items():
        if SECRET_NAME.search(name):
            raise DataError(f"parameter {name!r}: looks like a secret; keys come from the kernel's environment, "
                            "never from report parameters")
        if name not in declared:
            raise DataError(f"parameter {name!r}: not a parameter of {where} (known: {', '.join(declared)})")
        if isinstance(value, str) and value in secrets:
            raise DataError(f"parameter {name!r}: its value is a secret of the environment; refused")
        out[name] = _typed(name, value, declared[name].get("inferred_type_name") or "None")
    return out


def _typed(name: str, value: Any, type_name: str) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        if type_name == "int":
            return int(text)
        if type_name == "float":
            return float(text)
        if type_name == "bool":
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
    except ValueError:
        raise DataError(f"parameter {name!r}: {value!r} is not a {type_name}") from None
    if type_name == "None" and text.lower() in ("", "none", "null"):
        return None
    return value


def kernel_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a report's kernel runs in: this one without the ``MINTEL_*`` secrets."""
    env = os.environ if env is None else env
    return {k: v for k, v in env.items() if not SECRET_ENV.match(k)}


def _validate(params: dict[str, Any], declared: Mapping[str, dict]) -> None:
    """Fail fast, before a kernel starts: an unknown universe, a lake without the report's bars."""
    from mintel.lake import Lake

    if params.get("universe"):
        from mintel.universe import load_universe

        load_universe(params["universe"])  # DataError naming it
    if "lake" in declared:
        interval = params.get("interval") or _default_str(declared.get("interval")) or "1d"
        lake = Lake(params["lake"])
        if not lake.store.is_dir(lake.root):
            raise DataError(f"{lake.location}: no such lake")
        if not lake.partitions("bars", interval):
            raise DataError(f"{lake.location}: no {interval} bars (empty lake?)")


def _default_str(spec: dict | None) -> str | None:
    if not spec:
        return None
    text = str(spec.get("default", "")).strip()
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'" else None


# ---------------------------------------------------------------------- running


def _kernel_manager_class():
    from jupyter_client.manager import AsyncKernelManager

    class ScrubbedKernelManager(AsyncKernelManager):
        """Starts the kernel without the environment's secrets."""

        async def _async_pre_start_kernel(self, **kw):
            kw["env"] = kernel_env(kw.get("env"))
            return await super()._async_pre_start_kernel(**kw)

    return ScrubbedKernelManager


def run_report(notebook: str | os.PathLike = "scan_report", out: str | os.PathLike = DEFAULT_OUT,
               parameters: Mapping[str, Any] | None = None, lake: str | os.PathLike | None = None, *,
               progress: bool = True, timeout_s: float = KERNEL_TIMEOUT_S) -> ReportResult:
    """Run ``notebook`` with ``parameters``, export it to HTML and list it in ``out``'s index.

    ``lake`` (else the ``lake`` parameter, else ``MINTEL_LAKE``/``data/lake``) is passed to the
    template as an absolute path. Raises ``DataError`` on bad input and ``ReportError`` when the run
    fails; either way the failure is listed in the index.
    """
    out = Path(out)
    started = pd.Timestamp.now(tz="UTC")
    t0 = time.perf_counter()
    stem = Path(str(notebook)).stem
    (out / FAILED).mkdir(parents=True, exist_ok=True)
    name = _new_name(out, stem, started)
    result = ReportResult(name=name, notebook=stem, status="failed", started_at=_iso(started), duration_s=0.0, out=out)
    part = out / f".{name}.part.ipynb"
    path = params = None
    try:
        path = template_path(notebook)
        declared = template_parameters(path)
        params = parse_parameters(declared, dict(parameters or {}), path.name)
        if "lake" in declared:
            from mintel.lake.catalog import absolute_lake, default_root

            params["lake"] = absolute_lake(lake or params.get("lake") or default_root())
        result.parameters = params
        _validate(params, declared)
    except MintelError as exc:
        if params is not None:  # the parameterized notebook, to rerun by hand once the input is fixed
            _prepare(path, params, out / FAILED / f"{name}.ipynb")
            result.ipynb = f"{FAILED}/{name}.ipynb"
        part.unlink(missing_ok=True)
        result.error = str(exc)
        result.duration_s = round(time.perf_counter() - t0, 3)
        update_index(out, result)
        raise
    _execute(path, params, out, result, progress=progress, timeout_s=timeout_s)
    result.duration_s = round(time.perf_counter() - t0, 3)
    update_index(out, result)
    if not result.ok:
        raise ReportError(f"{stem}: {result.error} (notebook kept: {result.ipynb_path})", result)
    log.info("report %s: %s in %.1f s", name, result.html_path, result.duration_s)
    return result


def _execute(path: Path, params: dict, out: Path, result: ReportResult, *, progress: bool, timeout_s: float) -> None:
    """Run the template into a temporary notebook, then publish it (and its HTML) or file it as failed."""
    import nbformat
    import papermill as pm

    part = out / f".{result.name}.part.ipynb"
    try:
        pm.execute_notebook(str(path), str(part), parameters=params, progress_bar=progress, log_output=False,
                            execution_timeout=timeout_s, kernel_manager_class=_kernel_manager_class())
    except Exception as exc:  # noqa: BLE001 - a notebook can fail in any way; the archive records every one
        result.error = _reason(exc)
    if result.error is None:
        nb = nbformat.read(part, as_version=4)
        result.headline = headline_of(nb)
        nb.metadata["title"] = f"mintel · {result.notebook} · {result.started_at}"
        _write_atomic(out / f"{result.name}.html", export_html(_without_headline(nb)))
        _publish(nb, part, out / f"{result.name}.ipynb")
        result.status, result.html, result.ipynb = "ok", f"{result.name}.html", f"{result.name}.ipynb"
    elif part.exists() and part.stat().st_size:
        _publish(nbformat.read(part, as_version=4), part, out / FAILED / f"{result.name}.ipynb")
        result.ipynb = f"{FAILED}/{result.name}.ipynb"
    else:  # failed before papermill wrote anything
        part.unlink(missing_ok=True)


def _publish(nb, part: Path, target: Path) -> None:
    """Write ``nb`` (saying where it is) over ``part``, then rename it into place."""
    import nbformat

    nb.metadata.setdefault("papermill", {})["output_path"] = str(target)
    nbformat.write(nb, part)
    os.replace(part, target)


def _prepare(path: Path, params: dict, target: Path) -> None:
    import papermill as pm

    pm.execute_notebook(str(path), str(target), parameters=params, prepare_only=True, progress_bar=False)


def _reason(exc: Exception) -> str:
    """One line: the cell and its exception for a failed cell, else the exception."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        value = _one_line(exc.evalue)
        return f"cell {exc.exec_count} raised {exc.ename}" + (f": {value}" if value else "")
    return f"{type(exc).__name__}: {_one_line(str(exc))}"


def _one_line(text: str) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(text or ""))
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "")


def headline_of(nb) -> dict:
    """The figures ``mintel.report_views.record`` left in an executed notebook ({} when none)."""
    from mintel.report_views import HEADLINE_MIME

    for cell in reversed(nb.cells):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if HEADLINE_MIME in data:
                value = data[HEADLINE_MIME]
                return json.loads(value) if isinstance(value, str) else dict(value)
    return {}


def _without_headline(nb):
    """A copy of ``nb`` without the headline outputs (an HTML page has nothing to show for them)."""
    from mintel.report_views import HEADLINE_MIME

    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if "outputs" in cell:
            cell.outputs = [o for o in cell.outputs if HEADLINE_MIME not in o.get("data", {})]
    return nb


# The lab template without anything fetched from the network (require.js, MathJax, mermaid and
# widget managers come from CDNs); plotly.js is in the notebook's outputs already.
_OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def export_html(nb) -> str:
    """An executed notebook as one self-contained dark HTML page, code cells hidden."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", template_file="mintel_report.html.j2", theme="dark",
                            extra_loaders=[DictLoader({"mintel_report.html.j2": _OFFLINE_TEMPLATE})],
                            exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb)
    return body


# ---------------------------------------------------------------------- the index


def _iso(t: pd.Timestamp) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _new_name(out: Path, stem: str, started: pd.Timestamp) -> str:
    base = f"{stem}-{started:%Y%m%d-%H%M%S}"
    name, n = base, 1
    while any(p.exists() for p in (out / f"{name}.ipynb", out / FAILED / f"{name}.ipynb", out / f".{name}.part.ipynb")):
        n += 1
        name = f"{base}-{n}"
    (out / f".{name}.part.ipynb").touch()  # claimed: a run starting in the same second takes the next name
    return name


def read_index(out: str | os.PathLike = DEFAULT_OUT) -> list[dict]:
    """The index's records, oldest first ([] when there is none yet)."""
    path = Path(out) / INDEX_JSON
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable report index ({exc})") from None
    return list(data.get("reports", [])) if isinstance(data, dict) else []


@contextlib.contextmanager
def _locked(out: Path):
    """One writer of the index at a time (runs may finish together)."""
    import fcntl

    with open(out / ".index.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def update_index(out: str | os.PathLike, result: ReportResult) -> list[dict]:
    """Add (or replace) ``result`` in ``out``'s index and rewrite index.json and index.html atomically."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with _locked(out):
        entries = [e for e in read_index(out) if e.get("name") != result.name] + [result.entry()]
        _write_atomic(out / INDEX_JSON, json.dumps({"reports": entries}, indent=1, default=str) + "\n")
        _write_atomic(out / INDEX_HTML, render_index(entries))
    return entries


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def render_index(entries: list[dict]) -> str:
    """The report archive as one HTML page: a row per report, newest first, every value escaped."""
    from mintel.ui.theme import CSS

    def cell(v, cls: str = "") -> str:
        return f'<td class="{cls}">{"" if v is None else html.escape(str(v))}</td>'

    def num(v, spec: str) -> str:
        return "" if not isinstance(v, (int, float)) else format(v, spec)

    rows = []
    for e in sorted(entries, key=lambda e: str(e.get("started_at")), reverse=True):
        h, p = e.get("headline") or {}, e.get("parameters") or {}
        links = " ".join(f'<a href="{html.escape(str(e[k]), quote=True)}">{k}</a>' for k in ("html", "ipynb") if e.get(k))
        top = f"{h.get('top_pick')} {num(h.get('top_score'), '.0f')} {h.get('top_kind') or ''}" if h.get("top_pick") else ""
        status = e.get("status")
        rows.append(
            f'<tr class="{"" if status == "ok" else "m-failed"}">' + cell(e.get("started_at"), "t") + cell(e.get("notebook"), "t")
            + cell(status, "t" + ("" if status == "ok" else " down")) + cell(p.get("universe") or "lake", "t")
            + cell(p.get("interval") or h.get("interval"), "t") + cell(h.get("as_of"), "t") + cell(num(h.get("symbols"), ",d"))
            + cell(f"{num(h.get('sentiment'), '.1f')} {h.get('label') or ''}".strip())
            + cell(num(h.get("opportunities"), ",d")) + cell(top.strip(), "t") + cell(num(e.get("duration_s"), ".1f"))
            + f'<td class="t">{links}</td>' + cell(e.get("error"), "t m-error-text") + "</tr>")
    head = "".join(f'<th class="{c}">{t}</th>' for t, c in (
        ("time (UTC)", "t"), ("notebook", "t"), ("status", "t"), ("universe", "t"), ("interval", "t"), ("as of", "t"),
        ("symbols", ""), ("sentiment", ""), ("opportunities", ""), ("top pick", "t"), ("seconds", ""), ("report", "t"),
        ("error", "t")))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>mintel · reports</title>'
            f'<style>body{{margin:0;background:#0b0f14}} {CSS} .mintel a{{color:#f0a020}} .mintel td.m-error-text{{white-space:normal}}</style></head>'
            f'<body><div class="mintel"><h2>Reports ({len(entries)})</h2><table class="m-grid"><thead><tr>{head}</tr>'
            f'</thead><tbody>{"".join(rows)}</tbody></table></div></body></html>\n')


# ---------------------------------------------------------------------- command line


def add_parser(sub, command) -> Any:
    """``mintel report``: ``command`` is ``build_parser``'s helper (adds --lake, --config, --format)."""
    c = command("report", cmd_report, "run a report notebook with papermill, export HTML, update the report index")
    c.add_argument("--notebook", default="scan_report",
                   help="template name in notebooks/reports (scan_report, close_report) or a notebook path")
    c.add_argument("--out", default=str(DEFAULT_OUT), help="report directory (default: reports/)")
    c.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"), dest="parameter",
                   help="template parameter, e.g. -p universe nifty50 -p top_n 5 (repeatable)")
    c.add_argument("--no-progress", action="store_true", dest="no_progress", help="hide papermill's progress bar")
    return c


def cmd_report(args) -> int:
    from mintel.cli import emit
    from mintel.config import load_config

    params = dict(args.parameter or [])
    lake = args.lake or (None if "lake" in params else load_config(getattr(args, "config", None)).lake)
    result = run_report(args.notebook, args.out, params, lake=lake, progress=not args.no_progress)
    emit([result.record()], getattr(args, "format", "table"))
    return 0
