"""Fetch the source distributions of the LangGraph packages we test against.

LangGraph's own tests ship only in its sdists, never in its wheels.  This
script downloads the sdists of exactly the versions installed in the running
interpreter (``importlib.metadata``, so they always match what loomdb
depends on) with ``pip download --no-binary :all: --no-deps`` into
``.external/sdists/`` and extracts each one to
``.external/<name>-<version>/`` (``.external/`` is git-ignored: upstream code
is never committed).

It is idempotent and offline-safe: an extracted folder is complete once its
``.fetched`` marker exists, and then nothing is downloaded or extracted
again; a tarball already in ``.external/sdists/`` is extracted without
asking the index.  A lock file makes concurrent runs (two runners started
at once) wait for each other.

Usage::

    python tests/upstream/fetch_sdists.py             # fetch all, print the folders
    python tests/upstream/fetch_sdists.py langgraph   # fetch all, print that folder
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# Distributions whose tests we run (tests/upstream/langgraph, tests/upstream/store).
DISTRIBUTIONS = ("langgraph", "langgraph-checkpoint")

ROOT = Path(__file__).resolve().parents[2]
EXTERNAL = ROOT / ".external"
SDISTS = EXTERNAL / "sdists"
MARKER = ".fetched"


def sdist_stem(name: str, version: str) -> str:
    """The sdist's file stem and top folder, as built today: ``langgraph_checkpoint-4.3.2``."""
    return f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}"


def target_dir(name: str) -> Path:
    """Where the installed version of distribution ``name`` is (or will be) extracted."""
    version = importlib.metadata.version(name)
    # langgraph's stem is "langgraph-1.2.24", langgraph-checkpoint's "langgraph_checkpoint-4.3.2".
    return EXTERNAL / sdist_stem(name, version)


def _find_tarball(name: str, version: str) -> Path | None:
    tarball = SDISTS / f"{sdist_stem(name, version)}.tar.gz"
    return tarball if tarball.exists() else None


def _download(name: str, version: str) -> Path:
    """pip download the sdist of ``name==version`` into .external/sdists/."""
    SDISTS.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-binary",
        ":all:",
        "--no-deps",
        f"{name}=={version}",
        "-d",
        str(SDISTS),
    ]
    subprocess.run(command, check=True)
    tarball = _find_tarball(name, version)
    if tarball is None:
        raise FileNotFoundError(f"pip download left no {sdist_stem(name, version)}.tar.gz in {SDISTS}")
    return tarball


def _extract(tarball: Path, target: Path) -> None:
    """Extract the tarball's single top folder to ``target``, then mark it complete."""
    with tempfile.TemporaryDirectory(dir=EXTERNAL) as scratch:
        with tarfile.open(tarball) as tar:
            tar.extractall(scratch, filter="data")
        (top,) = Path(scratch).iterdir()
        if target.exists():  # left half-extracted by an interrupted run
            shutil.rmtree(target)
        top.rename(target)
    (target / MARKER).write_text(f"{tarball.name}\n")


def fetch(name: str) -> Path:
    """Make sure the installed version of ``name`` is extracted; return its folder."""
    target = target_dir(name)
    if (target / MARKER).exists():
        return target
    version = importlib.metadata.version(name)
    tarball = _find_tarball(name, version) or _download(name, version)
    _extract(tarball, target)
    return target


def fetch_all() -> dict[str, Path]:
    """Fetch every distribution in DISTRIBUTIONS, one process at a time."""
    EXTERNAL.mkdir(exist_ok=True)
    with open(EXTERNAL / ".fetch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return {name: fetch(name) for name in DISTRIBUTIONS}


def main(argv: list[str]) -> int:
    folders = fetch_all()
    wanted = argv or list(DISTRIBUTIONS)
    unknown = [name for name in wanted if name not in folders]
    if unknown:
        print(f"unknown distribution(s) {unknown}; known: {list(folders)}", file=sys.stderr)
        return 2
    for name in wanted:
        print(folders[name])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
