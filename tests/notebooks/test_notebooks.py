"""Every notebook is committed clean and runs: nbval (--nbval-lax) on a small real lake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ui.conftest import build_ui_lake

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").rglob("*.ipynb"))
DASHBOARDS = sorted((ROOT / "notebooks" / "dashboards").glob("*.ipynb"))


def test_there_are_dashboards():
    assert {p.stem for p in DASHBOARDS} >= {"scanner", "opportunities", "overview", "symbol", "health"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_without_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name} cell {i} has outputs"
            assert cell.get("execution_count") is None, f"{path.name} cell {i} has an execution count"
        lines = cell["source"] if isinstance(cell["source"], list) else cell["source"].splitlines()
        code = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
        assert len(code) <= 30, f"{path.name} cell {i}: {len(code)} lines of logic belong in the package"


@pytest.fixture(scope="module")
def nb_lake(tmp_path_factory):
    return build_ui_lake(tmp_path_factory.mktemp("nb") / "lake")


@pytest.mark.slow
@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_runs_under_nbval(path, nb_lake, tmp_path):
    env = {**os.environ, "MINTEL_LAKE": str(nb_lake.root), "MINTEL_WATCHLISTS": str(tmp_path / "wl")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(path)],
        env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout
