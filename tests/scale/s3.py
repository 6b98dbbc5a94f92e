"""An S3-compatible server on 127.0.0.1 for the object-store tests: moto's server mode (``moto[server]``
from PyPI) in its own process, speaking the real S3 REST API over loopback HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid

import pyarrow.fs as pafs

ACCESS_KEY = "mintel-test-key"
SECRET_KEY = "s3cr3t-" + uuid.uuid4().hex  # a value to look for: it must never show up anywhere


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    """``python -m moto.server`` on a free loopback port; ``env`` points the AWS SDK at it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",  # never ask an instance-metadata service
        }

    def start(self) -> MotoServer:
        self.process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("moto server did not start in 30 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def filesystem(self) -> pafs.S3FileSystem:
        """A filesystem that may create buckets (the lake's own never does)."""
        return pafs.S3FileSystem(access_key=ACCESS_KEY, secret_key=SECRET_KEY, region="us-east-1",
                                 endpoint_override=f"127.0.0.1:{self.port}", scheme="http", allow_bucket_creation=True)

    def bucket(self, name: str | None = None) -> str:
        name = name or f"lake-{uuid.uuid4().hex[:12]}"
        self.filesystem().create_dir(name)
        return name


def set_env(values: dict[str, str]) -> dict[str, str | None]:
    """Set environment variables; returns what to restore."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    return old


def restore_env(old: dict[str, str | None]) -> None:
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
