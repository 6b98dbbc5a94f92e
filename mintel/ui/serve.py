"""Serving the dashboards with Voilà: ``mintel dashboard`` and the dashboards half of ``mintel up``.

Voilà runs as its own process (``python -m voila``) on the ``notebooks/dashboards`` directory, so a
dashboard kernel can never stall ingestion. The defaults are the safe ones:

- bound to 127.0.0.1; binding any other address requires a token (given, or generated and printed);
- sources stripped, tracebacks hidden, a cap on concurrent kernels (``CappedKernelManager``: one
  more page gets HTTP 503 with a clear message) and idle kernels culled;
- the kernels get the lake's absolute path in ``MINTEL_LAKE`` and none of mintel's secrets (provider
  keys, webhook URLs): dashboards only read the lake.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from mintel.errors import ConfigError
from mintel.lake.catalog import absolute_lake

DASHBOARDS = {  # notebook stem -> title, in the order the index lists them
    "scanner": "Live market scanner",
    "opportunities": "Trading opportunities",
    "overview": "Market overview",
    "symbol": "Symbol analysis",
    "health": "Health",
}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MAX_KERNELS = 12
CULL_IDLE_S = 900  # a dashboard nobody looks at for 15 min gives its memory back
SHARE = Path(__file__).resolve().parent / "share"  # share/voila/templates/mintel: the index page
SECRET_ENV = re.compile(r"^MINTEL_.*(KEY|TOKEN|SECRET|PASSWORD|WEBHOOK).*$|^MINTEL_WEBHOOK_URL$", re.IGNORECASE)


def notebooks_dir() -> Path:
    """The dashboards shipped with mintel (the project's notebooks/dashboards)."""
    return Path(__file__).resolve().parents[2] / "notebooks" / "dashboards"


@dataclass
class DashboardServer:
    """How to run Voilà for the dashboards; ``start()`` launches it, ``urls`` says where they are."""

    lake: Path | str  # a directory (made absolute) or an s3:// URL
    ip: str = "127.0.0.1"
    port: int = 8866
    token: str | None = None
    notebooks: Path = field(default_factory=notebooks_dir)
    max_kernels: int = MAX_KERNELS
    cull_idle_s: int = CULL_IDLE_S
    preheat: bool = False  # keep one kernel per dashboard rendered ahead: pages open in ~1 s, ~150 MB each
    process: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.lake = absolute_lake(self.lake)  # a directory, or an s3:// URL
        self.notebooks = Path(self.notebooks).resolve()
        if not self.notebooks.is_dir():
            raise ConfigError(f"dashboards {self.notebooks}: no such directory")
        if self.ip not in LOOPBACK and not self.token:
            self.token = secrets.token_urlsafe(24)  # never open to a network without one
        if self.port == 0:
            self.port = free_port(self.ip)

    @property
    def base(self) -> str:
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"http://{host}:{self.port}"

    def url(self, name: str | None = None) -> str:
        path = "/" if name is None else f"/voila/render/{name}.ipynb"
        return self.base + path + (f"?token={self.token}" if self.token else "")

    @property
    def urls(self) -> dict[str, str]:
        return {"index": self.url(), **{n: self.url(n) for n in DASHBOARDS if (self.notebooks / f"{n}.ipynb").exists()}}

    def argv(self) -> list[str]:
        return [
            sys.executable, "-m", "voila", str(self.notebooks),
            "--no-browser", f"--port={self.port}", f"--Voila.ip={self.ip}", "--theme=dark",
            "--template=mintel", "--classic-tree",
            "--strip_sources=True", "--show_tracebacks=False",
            f"--token={self.token or ''}",
            "--VoilaConfiguration.multi_kernel_manager_class=mintel.ui.serve.CappedKernelManager",
            f"--CappedKernelManager.max_kernels={self.max_kernels}",
            f"--MappingKernelManager.cull_idle_timeout={self.cull_idle_s}",
            "--MappingKernelManager.cull_interval=60",
            "--MappingKernelManager.cull_connected=False",
            *(["--preheat_kernel=True", "--pool_size=1"] if self.preheat else []),
        ]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not SECRET_ENV.match(k)}
        env["MINTEL_LAKE"] = self.lake  # kernels run in the notebooks' directory: absolute paths only
        env["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(SHARE), os.environ.get("JUPYTER_PATH")) if p)  # the index template
        env["MINTEL_WATCHLISTS"] = str(Path(os.environ.get("MINTEL_WATCHLISTS") or "data/watchlists").resolve())
        return env

    def start(self, *, log=None) -> subprocess.Popen:
        self.process = subprocess.Popen(self.argv(), env=self.env(), stdout=log or subprocess.DEVNULL,
                                        stderr=subprocess.STDOUT if log else subprocess.DEVNULL, cwd=self.notebooks)
        return self.process

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Until the server accepts connections; ConfigError when it exits or times out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ConfigError(f"voila exited with {self.process.returncode} (is port {self.port} free?)")
            try:
                with socket.create_connection((self.ip, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        raise ConfigError(f"voila did not answer on {self.base} within {timeout_s:.0f} s")

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port(ip: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET) as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def _capped_kernel_manager():
    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
    from tornado.web import HTTPError
    from traitlets import Integer

    class CappedKernelManager(AsyncMappingKernelManager):
        """Refuses a kernel beyond ``max_kernels`` (HTTP 503) instead of exhausting the machine."""

        max_kernels = Integer(MAX_KERNELS, config=True, help="most dashboard kernels at once")

        async def start_kernel(self, *args, **kwargs):
            if kwargs.get("kernel_id") is None and len(self.list_kernel_ids()) >= self.max_kernels:
                msg = f"Too many dashboards open (cap {self.max_kernels}); close one and retry"
                raise HTTPError(503, msg, reason=msg)
            return await super().start_kernel(*args, **kwargs)

    return CappedKernelManager


def __getattr__(name: str):  # CappedKernelManager imports jupyter_server only when Voilà asks for it
    if name == "CappedKernelManager":
        cls = _capped_kernel_manager()
        globals()[name] = cls
        return cls
    raise AttributeError(name)
