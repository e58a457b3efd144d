"""Print the differential suite's summary at the end of a run that included it."""

from __future__ import annotations

import time

_STARTED = time.time()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The per-engine counts, commonest differences and refused constructs of this run."""
    if getattr(config, "cache", None) is None:
        return
    folder = config.cache.mkdir("differential")
    reports = [p for p in sorted(folder.glob("*.txt")) if p.stat().st_mtime >= _STARTED]
    if not reports:
        return
    terminalreporter.section("loomdb differential suite")
    for path in reports:
        terminalreporter.write_line(path.read_text().rstrip())
