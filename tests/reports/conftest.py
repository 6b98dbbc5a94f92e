"""A small real lake (the dashboards' one: nifty50 from the simulator, a year of daily bars) and a
``mintel`` runner for the report command."""

from __future__ import annotations

import argparse
import sys

import pytest

from tests.ui.conftest import build_ui_lake

FAKE_SECRETS = {
    "MINTEL_TWELVEDATA_API_KEY": "fake-td-key-123",
    "MINTEL_ALPHAVANTAGE_API_KEY": "fake-av-key-456",
    "MINTEL_WEBHOOK_URL": "https://hooks.example/secret-xyz",
    "MINTEL_DASHBOARD_TOKEN": "fake-dash-token-789",
}


@pytest.fixture(scope="session")
def report_lake(tmp_path_factory):
    return build_ui_lake(tmp_path_factory.mktemp("report-lake") / "lake")


@pytest.fixture(scope="module")
def fake_secrets():
    """The fake keys in this process's environment for the module (as an operator's shell has them)."""
    with pytest.MonkeyPatch.context() as mp:
        for k, v in FAKE_SECRETS.items():
            mp.setenv(k, v)
        mp.setenv("MINTEL_REPORT_PROBE", "probe-visible")  # not a secret: kernels keep it
        yield FAKE_SECRETS


def _wired_cli() -> bool:
    from mintel import cli

    subcommands = [a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return any("report" in a.choices for a in subcommands)


def mintel(*argv: str) -> int:
    """``mintel ARGV`` as the console script runs it: through mintel.cli once the lead wires the
    command, else the same parser helper and error handling around ``mintel.reports.add_parser``."""
    from mintel import cli, reports
    from mintel.errors import MintelError

    if _wired_cli():
        return cli.main(list(argv))
    parser = argparse.ArgumentParser(prog="mintel")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name, func, help_, data=True):  # mintel.cli.build_parser's helper
        c = sub.add_parser(name, help=help_)
        c.set_defaults(func=func)
        c.add_argument("--lake")
        c.add_argument("--config")
        if data:
            c.add_argument("--format", choices=cli.FORMATS, default="table")
        return c

    reports.add_parser(sub, command)
    args = parser.parse_args(list(argv))
    try:
        return args.func(args)
    except MintelError as exc:
        print(f"mintel: {exc}", file=sys.stderr)
        return exc.exit_code
