"""The signal lab notebook runs as a scheduled report would run it: papermill, then the HTML export."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from mintel.reports import run_report

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "research" / "signal_lab.ipynb"


@pytest.mark.slow
def test_signal_lab_runs_under_papermill(lab_lake, tmp_path):
    params = {"start": "2025-06-02", "detectors": "breakout,gap_up,rsi_oversold", "sweep_holds": "1,5",
              "sweep_min_scores": "40,60"}
    result = run_report(NOTEBOOK, tmp_path / "reports", params, lake=lab_lake.root, progress=False)
    assert result.ok, result.error
    nb = nbformat.read(result.ipynb_path, as_version=4)
    text = "\n".join(str(o.get("data", {}).get("text/html", "")) + str(o.get("text", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "12 symbols" in text and "m-grid" in text and "base hit" in text
    assert not any(o.get("output_type") == "error" for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert Path(result.html_path).stat().st_size > 0
