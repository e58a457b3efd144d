"""A background thread that deletes a store's expired items now and then."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable

logger = logging.getLogger("loomdb.langgraph.store")


class Sweeper:
    """Runs ``sweep()`` every interval on a daemon thread until stopped."""

    def __init__(self, sweep: Callable[[], int]) -> None:
        self._sweep = sweep
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._future: concurrent.futures.Future[None] | None = None

    def start(self, interval_minutes: float) -> concurrent.futures.Future[None]:
        """Start sweeping (or keep the running sweeper); cancelling the future stops it.

        The future completes when the sweeper stops.
        """
        if self._thread is not None and self._thread.is_alive() and self._future is not None:
            return self._future
        self._stop.clear()
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        future.add_done_callback(lambda f: self._stop.set() if f.cancelled() else None)

        def loop() -> None:
            while not self._stop.wait(interval_minutes * 60):
                try:
                    swept = self._sweep()
                    if swept:
                        logger.info("swept %d expired store items", swept)
                except Exception:
                    # A failed sweep (say, a lost connection) is retried next interval.
                    logger.exception("store TTL sweep failed")
            if not future.done():
                future.set_result(None)

        self._future = future
        self._thread = threading.Thread(target=loop, daemon=True, name="loomdb-store-ttl-sweeper")
        self._thread.start()
        return future

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the sweeper; True once its thread has ended (or none was running)."""
        if self._thread is None:
            return True
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            return False
        self._thread = None
        return True
