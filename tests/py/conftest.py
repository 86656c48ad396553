"""Shared pytest setup: import paths, the ONNX node test data fixture, the PostgreSQL server of the
database tests, the conformance summary."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parents[1]
for _path in (REPO_ROOT / "python", TESTS_DIR):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
# The sampler tests' shared checks (tests/py/sampler_landscape.py) use plain asserts: explain their failures.
pytest.register_assert_rewrite("sampler_landscape")

from conformance import ensure_node_test_data, format_table  # noqa: E402
from database_support import PostgresServer  # noqa: E402

OP_PROPERTY = "wpk_conformance_op"


@pytest.fixture(scope="session")
def node_test_dir() -> Path:
    """The ONNX node test data (generated once per machine and onnx version; see conformance/data.py).

    test_node_conformance.py already needs the test names at collection time, so the data is
    usually generated during collection; this fixture makes sure it is still there.
    """
    return ensure_node_test_data()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer | str]:
    """The session's PostgreSQL server (test_database.py, test_tune_workers.py: one server,
    started when a test first needs it), or why there is none."""
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        yield "psycopg2 is not installed (pip install 'woodpecker[postgres]')"
        return
    try:
        server = PostgresServer.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
        yield f"cannot start PostgreSQL: {error}"
        return
    try:
        yield server
    finally:
        server.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Tag every node conformance test with its op, for the per-op summary (survives xdist).
    for item in items:
        callspec = getattr(item, "callspec", None)
        case = callspec.params.get("node_case") if callspec is not None else None
        if case is not None:
            item.user_properties.append((OP_PROPERTY, case.primary_op))


def _crash_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = getattr(crash, "message", None) or str(report.longrepr)
    return (text.strip().splitlines() or [""])[0]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    outcome: dict[str, tuple[str, str]] = {}  # nodeid -> (op, status)
    first_error: dict[str, str] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            props = dict(getattr(report, "user_properties", ()))
            op = props.get(OP_PROPERTY)
            if op is None or not isinstance(report, pytest.TestReport):
                continue
            if report.failed:
                status = "failed"
                first_error.setdefault(report.nodeid, _crash_line(report))
            elif report.skipped:
                status = "skipped"
            elif report.when == "call":
                status = "passed"
            else:
                continue
            previous = outcome.get(report.nodeid, (op, ""))[1]
            if previous != "failed":
                outcome[report.nodeid] = (op, status)
    if not outcome:
        return
    terminalreporter.section("Woodpecker ONNX node conformance, per op (each test at every opt level run)")
    terminalreporter.write_line(format_table(outcome.values()))
    if first_error:
        by_line: dict[str, list[str]] = {}
        for nodeid, line in sorted(first_error.items()):
            by_line.setdefault(line, []).append(nodeid)
        terminalreporter.write_line("")
        terminalreporter.write_line(f"failures ({len(first_error)}), grouped by first error line:")
        for line, nodeids in sorted(by_line.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            ops = sorted({outcome[n][0] for n in nodeids})
            names = [n.split("[", 1)[-1].rstrip("]") for n in nodeids]
            shown = " ".join(names[:8]) + (f" ... (+{len(names) - 8})" if len(names) > 8 else "")
            terminalreporter.write_line(f"- {len(nodeids)} [{', '.join(ops)}]: {line}")
            terminalreporter.write_line(f"    {shown}")
