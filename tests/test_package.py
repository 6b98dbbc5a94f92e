"""The promised surface of ``import mintel``: every name it exports resolves, and the heavy parts load
only when first used."""

from __future__ import annotations

import subprocess
import sys

import mintel


def test_every_exported_name_resolves():
    for name in mintel.__all__:
        value = getattr(mintel, name)
        assert value is not None, name
        if name != "__version__":
            assert callable(value), name
    assert mintel.backfill_indicators.__module__ == "mintel.analytics.history"


def test_import_mintel_does_not_load_the_analytics():
    code = ("import sys, mintel; heavy = [m for m in ('mintel.analytics.scan', 'mintel.analytics.history', 'talib') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
    code = "import sys, mintel; mintel.scan; print('mintel.analytics.scan' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "True"
