"""`python -m bench [name ...]`: run every bench/bench_*.py (or the named ones) and print their figures.

Exits non-zero when a bench's ``main()`` returns a problem count above zero (the soaks do)."""

import importlib
import pkgutil
import sys
from pathlib import Path

names = sys.argv[1:] or sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name.startswith("bench_"))
failed = []
for name in names:
    mod = importlib.import_module(f"bench.{name if name.startswith('bench_') else 'bench_' + name}")
    print(f"== {mod.__name__}")
    rc = mod.main()
    if isinstance(rc, int) and rc:
        failed.append(mod.__name__)
if failed:
    sys.exit(f"problems in {', '.join(failed)}")
