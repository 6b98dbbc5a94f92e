"""Real papermill runs of the report templates on a small lake: sections and figures against the
analytics, offline HTML, the index, failures and secrets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from mintel import reports
from mintel.analytics.scan import opportunities, sentiment
from mintel.errors import DataError
from tests.reports.conftest import mintel

MIN_SCORE, TOP_N = 40.0, 5
SCAN_SECTIONS = ["Market summary", "Breadth and sentiment", "Sector heat map", "Top opportunities", "Unusual volume",
                 "Breakouts", "Top picks"]
CLOSE_SECTIONS = ["Session summary", "Breadth and sentiment", "Sector performance", "Gainers and losers",
                  "Unusual volume", "New 52-week highs and lows", "Signals of the session", "Top opportunities"]
EXTERNAL_SCRIPT = re.compile(r"<script[^>]*\bsrc\s*=\s*[\"']?(https?:)?//", re.IGNORECASE)
ANY_SCRIPT_SRC = re.compile(r"<script[^>]*\bsrc\s*=", re.IGNORECASE)


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reports") / "reports"


@pytest.fixture(scope="module")
def scan_run(report_lake, out, fake_secrets):
    params = {"top_n": str(TOP_N), "min_score": str(MIN_SCORE)}  # strings, as the command line gives them
    return reports.run_report("scan_report", out, params, lake=report_lake.root, progress=False)


@pytest.fixture(scope="module")
def close_run(report_lake, out, fake_secrets, scan_run):
    return reports.run_report("close_report", out, {"top_n": TOP_N, "min_score": MIN_SCORE}, lake=report_lake.root,
                              progress=False)


def section(page: str, title: str) -> str:
    """The HTML from the heading ``title`` to the next h2 heading."""
    start = page.index(f">{title}<")
    nxt = page.find("<h2 id=", start)
    return page[start:] if nxt < 0 else page[start:nxt]


def index(out: Path) -> list[dict]:
    return json.loads((out / "index.json").read_text())["reports"]


# ---------------------------------------------------------------------- a successful run


def test_scan_report_exports_every_section_offline(scan_run):
    assert scan_run.ok and scan_run.error is None
    page = scan_run.html_path.read_text()
    for title in SCAN_SECTIONS:
        assert re.search(rf"<h2[^>]*>{re.escape(title)}<", page), title
    assert not ANY_SCRIPT_SRC.search(page)  # plotly.js and everything else inline: opens offline
    assert page.count("plotly.js v") == 1  # embedded once, every chart draws with it
    assert "Plotly.newPlot" in section(page, "Sector heat map")
    assert "rv.show(" not in page and "rv.load(" not in page  # code cells hidden


def test_sentiment_shown_is_the_lakes(scan_run, report_lake):
    expected = sentiment(report_lake, "1d")
    assert scan_run.headline["sentiment"] == pytest.approx(expected["sentiment"])
    assert scan_run.headline["label"] == expected["label"]
    summary = section(scan_run.html_path.read_text(), "Market summary")
    assert f"{expected['sentiment']:.1f} {expected['label']}" in summary
    assert f"{expected['advancers']} / {expected['decliners']}" in summary


def test_top_opportunities_are_the_lakes(scan_run, report_lake):
    expected = opportunities(report_lake, "1d", min_score=MIN_SCORE, top=TOP_N)
    assert len(expected), "the test lake should have opportunities"
    rows = section(scan_run.html_path.read_text(), "Top opportunities")
    assert re.findall(r'<tr data-symbol="([^"]+)"', rows) == expected["symbol"].tolist()
    for kind, score in zip(expected["kind"], expected["score"]):
        assert f'<td class="t">{kind}</td>' in rows and f"<td>{score:.1f}</td>" in rows
    assert "base " in rows  # the factors of each score
    assert scan_run.headline["top_pick"] == expected["symbol"].iloc[0]
    assert scan_run.headline["top_score"] == pytest.approx(expected["score"].iloc[0])
    picks = section(scan_run.html_path.read_text(), "Top picks")
    assert picks.count("Plotly.newPlot") == expected["symbol"].nunique()  # a chart per top pick


def test_executed_notebook_kept_with_typed_parameters(scan_run):
    nb = nbformat.read(scan_run.ipynb_path, as_version=4)
    assert nb.metadata.papermill.parameters["top_n"] == TOP_N  # "5" parsed to the template's int
    assert nb.metadata.papermill.parameters["min_score"] == MIN_SCORE
    assert nb.metadata.papermill.output_path == str(scan_run.ipynb_path)
    assert reports.headline_of(nb) == scan_run.headline


def test_close_report_shares_the_figures(close_run, scan_run):
    page = close_run.html_path.read_text()
    for title in CLOSE_SECTIONS:
        assert re.search(rf"<h2[^>]*>{re.escape(title)}<", page), title
    assert not ANY_SCRIPT_SRC.search(page)
    assert close_run.headline["sentiment"] == scan_run.headline["sentiment"]


def test_index_lists_every_report(close_run, scan_run, out):
    entries = {e["name"]: e for e in index(out)}
    for r in (scan_run, close_run):
        e = entries[r.name]
        assert e["status"] == "ok" and (out / e["html"]).is_file() and (out / e["ipynb"]).is_file()
        assert e["headline"]["top_pick"] == r.headline["top_pick"]
    page = (out / "index.html").read_text()
    for r in (scan_run, close_run):
        assert f'href="{r.name}.html"' in page
    assert f"{scan_run.headline['sentiment']:.1f} {scan_run.headline['label']}" in page
    assert not list(out.glob(".*.part.ipynb")) and not list(out.glob("*.tmp"))


# ---------------------------------------------------------------------- failures


def probe_template(tmp_path: Path) -> Path:
    """The scan report with a cell printing the kernel's MINTEL_ environment, then one that raises."""
    nb = nbformat.read(reports.template_path("scan_report"), as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])) + 1
    nb.cells[at:at] = [
        nbformat.v4.new_code_cell("import os\nprint({k: v for k, v in os.environ.items() if k.startswith('MINTEL_')})"),
        nbformat.v4.new_code_cell("raise RuntimeError('planted failure')"),
    ]
    path = tmp_path / "probe.ipynb"
    nbformat.write(nb, path)
    return path


def test_raising_cell_fails_keeps_notebook_and_index(tmp_path, report_lake, out, scan_run, close_run, fake_secrets,
                                                     capsys):
    before = index(out)
    code = mintel("report", "--notebook", str(probe_template(tmp_path)), "--out", str(out), "--lake",
                  str(report_lake.root), "--no-progress")
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert err[-1].startswith("mintel: probe: cell ") and "raised RuntimeError: planted failure" in err[-1]
    after = index(out)
    assert after[:len(before)] == before  # previous entries intact
    failed = after[-1]
    assert failed["status"] == "failed" and "planted failure" in failed["error"]
    kept = out / failed["ipynb"]
    assert kept.parent.name == "failed" and kept.is_file()
    text = kept.read_text()
    assert "probe-visible" in text  # the kernel printed its MINTEL_ environment ...
    for secret in fake_secrets.values():
        assert secret not in text  # ... without a key in it
    assert "failed" in (out / "index.html").read_text()


def test_unknown_universe_fails_before_running(report_lake, out, scan_run, capsys):
    before = index(out)
    code = mintel("report", "--out", str(out), "--lake", str(report_lake.root), "-p", "universe", "nosuchverse")
    err = capsys.readouterr().err.strip()
    assert code != 0 and err.startswith("mintel: nosuchverse: unknown universe") and "\n" not in err
    after = index(out)
    assert after[:len(before)] == before
    assert after[-1]["status"] == "failed" and "nosuchverse" in after[-1]["error"]
    kept = nbformat.read(out / after[-1]["ipynb"], as_version=4)  # parameterized, to rerun once fixed
    assert kept.metadata.papermill.parameters["universe"] == "nosuchverse"


def test_empty_lake_fails_with_reason(tmp_path, out, scan_run):
    empty = tmp_path / "lake"
    empty.mkdir()
    with pytest.raises(DataError, match=r"no 1d bars \(empty lake\?\)"):
        reports.run_report("scan_report", out, lake=empty, progress=False)
    with pytest.raises(DataError, match="no such lake"):
        reports.run_report("scan_report", out, lake=tmp_path / "missing", progress=False)
    assert [e["status"] for e in index(out)][-2:] == ["failed", "failed"]


def test_unknown_report_and_parameter(out, report_lake):
    with pytest.raises(DataError, match="nosuch: unknown report"):
        reports.run_report("nosuch", out, lake=report_lake.root)
    with pytest.raises(DataError, match="'colour': not a parameter"):
        reports.run_report("scan_report", out, {"colour": "red"}, lake=report_lake.root)
    with pytest.raises(DataError, match="'top_n': 'five' is not a int"):
        reports.run_report("scan_report", out, {"top_n": "five"}, lake=report_lake.root)
    json.loads((out / "index.json").read_text())  # still valid


# ---------------------------------------------------------------------- secrets and parameters


@pytest.mark.parametrize("name", ["api_key", "TWELVEDATA_TOKEN", "webhook_url", "db_password", "client_secret"])
def test_secret_like_parameters_refused(name, out, report_lake):
    with pytest.raises(DataError, match="looks like a secret"):
        reports.run_report("scan_report", out, {name: "sk-not-here-0000"}, lake=report_lake.root)
    assert "sk-not-here-0000" not in (out / "index.json").read_text()


def test_secret_value_refused_under_any_name(out, report_lake, fake_secrets):
    with pytest.raises(DataError, match="a secret of the environment"):
        reports.run_report("scan_report", out, {"universe": fake_secrets["MINTEL_TWELVEDATA_API_KEY"]},
                           lake=report_lake.root)


def test_no_secret_in_any_output(scan_run, close_run, out, fake_secrets):
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.suffix == ".html" for p in files) and any(p.suffix == ".ipynb" for p in files)
    for p in files:
        text = p.read_text(errors="replace")
        for secret in fake_secrets.values():
            assert secret not in text, f"{secret} in {p}"


def test_parameters_parsed_to_template_types():
    declared = reports.template_parameters(reports.template_path("scan_report"))
    assert set(declared) >= {"universe", "interval", "as_of", "lookback", "min_score", "top_n", "lake"}
    got = reports.parse_parameters(declared, {"top_n": "7", "min_score": "55", "universe": "nifty50",
                                              "as_of": "None", "interval": "1d"})
    assert got == {"top_n": 7, "min_score": 55.0, "universe": "nifty50", "as_of": None, "interval": "1d"}
    assert reports.parse_parameters(declared, {"top_n": 3}) == {"top_n": 3}  # Python values pass as they are
    with pytest.raises(DataError, match="'min_score': '__import__' is not a float"):
        reports.parse_parameters(declared, {"min_score": "__import__"})


def test_kernel_env_drops_secrets():
    env = reports.kernel_env({"MINTEL_TWELVEDATA_API_KEY": "k", "MINTEL_WEBHOOK_URL": "w", "MINTEL_LAKE": "l",
                              "PATH": "/bin", "MINTEL_DASHBOARD_TOKEN": "t"})
    assert env == {"MINTEL_LAKE": "l", "PATH": "/bin"}


def test_index_rewrite_is_consistent(tmp_path):
    out = tmp_path / "r"
    first = reports.ReportResult(name="a", notebook="scan_report", status="ok", started_at="2026-01-01T00:00:00Z",
                                 duration_s=1.0, headline={"top_pick": "<b>X</b>"}, html="a.html", out=out)
    reports.update_index(out, first)
    second = reports.ReportResult(name="b", notebook="scan_report", status="failed", started_at="2026-01-02T00:00:00Z",
                                  duration_s=0.5, error="boom <script>", out=out)
    reports.update_index(out, second)
    assert [e["name"] for e in index(out)] == ["a", "b"]
    page = (out / "index.html").read_text()
    assert "<b>X</b>" not in page and "&lt;b&gt;X&lt;/b&gt;" in page and "boom &lt;script&gt;" in page
    assert page.index("boom") < page.index("&lt;b&gt;X")  # newest first
