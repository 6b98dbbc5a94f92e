"""Real disk faults for a child process: a full disk and a read-only lake.

- ``file_size_limit``: RLIMIT_FSIZE in the child (any user, any OS with it): a write past the limit
  fails with EFBIG ("File too large") instead of raising SIGXFSZ, which the child ignores.
- ``in_private_mounts``: a shell script in a private mount namespace (``unshare -m``, root only):
  a tiny tmpfs gives a real ENOSPC, a read-only bind mount a real EROFS, and both vanish with the
  child; nothing is mounted where the tests run.
- As a normal user, ``chmod`` makes a lake read-only; as root it does not (root ignores the mode),
  hence the mount namespace.
"""

from __future__ import annotations

import functools
import os
import resource
import shlex
import shutil
import signal
import subprocess
from pathlib import Path


def file_size_limit(max_bytes: int):
    """A ``preexec_fn``: writes past ``max_bytes`` in any one file fail with EFBIG."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # ignored dispositions survive exec
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return apply


def is_root() -> bool:
    return os.geteuid() == 0


@functools.lru_cache(maxsize=1)
def private_mounts_available() -> bool:
    """True when this process may make a private mount namespace and mount in it (root, unshare)."""
    if not is_root() or shutil.which("unshare") is None or shutil.which("mount") is None:
        return False
    script = 'd=$(mktemp -d) && mount --make-rprivate / && mount -t tmpfs -o size=64k tmpfs "$d" && umount "$d"; rc=$?; rmdir "$d"; exit $rc'
    probe = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, timeout=30)
    return probe.returncode == 0


def in_private_mounts(script: str, *, timeout_s: float = 120) -> subprocess.CompletedProcess:
    """Run a ``sh`` script in a private mount namespace (its mounts are gone when it ends)."""
    return subprocess.run(["unshare", "-m", "sh", "-c", "set -e\nmount --make-rprivate /\n" + script],
                          capture_output=True, text=True, timeout=timeout_s)


def q(path) -> str:
    return shlex.quote(str(path))


def make_read_only(root: Path) -> None:
    """chmod every directory of the lake read-only (only effective for a non-root user)."""
    for d, _, _ in os.walk(root):
        os.chmod(d, 0o555)


def make_writable(root: Path) -> None:
    for d, _, _ in os.walk(root):
        os.chmod(d, 0o755)
