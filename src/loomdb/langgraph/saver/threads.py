"""LoomSaver's whole-thread methods: delete a thread or the checkpoints of
runs, copy a thread, prune threads, and the DeltaChannel history walk.

Each first commits the writes deferred so far. The SQL is in ``maintenance``:
a deletion or a copy is one commit (``prune`` with ``keep_latest``: one per
thread), and after a deletion the saver forgets what it remembered of the
threads it deleted from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import DeltaChannelHistory

from . import maintenance
from .config import address
from .memory import SaverState
from .read import decode_writes, fetch_writes, load_refs, write_refs


class SaverThreads(SaverState):
    """LoomSaver's whole-thread methods (a base class of LoomSaver)."""

    # -- deletion and copies -------------------------------------------------------------------

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, value and write of a thread (a no-op for an unknown one).

        As every loomdb delete, the rows stay readable in the store's history
        (``as_of``, earlier commits); they leave the branch's current state.
        """
        self._ready()
        self.flush()
        maintenance.delete_threads(self.db, [str(thread_id)])
        self._forget({str(thread_id)})

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) that runs ``run_ids`` created.

        Values no remaining checkpoint uses are deleted too. A checkpoint
        whose parent is deleted becomes a root. As LangGraph warns, deleting
        a run a ``DeltaChannel``'s later state is rebuilt from loses that state.
        """
        if isinstance(run_ids, str):
            raise TypeError("run_ids must be a sequence of run IDs, not a str")
        self._ready()
        self.flush()
        threads = maintenance.delete_runs(self.db, [str(r) for r in run_ids])
        self._forget(threads)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, value and write of one thread into a new thread.

        Raises ``loomdb.IntegrityError`` when the target thread already has
        checkpoints (delete it first); copying an unknown thread does nothing.
        """
        self._ready()
        self.flush()
        maintenance.copy_thread(self.db, str(source_thread_id), str(target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Prune threads: ``"keep_latest"`` keeps each namespace's latest checkpoint, ``"delete"`` all.

        ``keep_latest`` also keeps the ancestors (and their writes) a
        ``DeltaChannel`` of the kept checkpoint is rebuilt from, back to its
        nearest snapshot, so pruning never changes a thread's state. A kept
        checkpoint whose parent is deleted becomes a root. Raises
        ``TypeError`` for a single str, ``ValueError`` for an unknown strategy.
        """
        if isinstance(thread_ids, str):
            raise TypeError("thread_ids must be a sequence of thread IDs, not a str")
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"unknown prune strategy {strategy!r}: use 'keep_latest' or 'delete'")
        self._ready()
        ids = [str(t) for t in thread_ids]
        if not ids:
            return
        self.flush()
        if strategy == "delete":
            maintenance.delete_threads(self.db, ids)
        else:
            for thread_id in ids:
                maintenance.keep_latest(self.db, thread_id)
        self._forget(set(ids))

    def _forget(self, thread_ids: set[str]) -> None:
        """Forget what this saver remembers of these threads."""
        # Rows of these threads may be gone: nothing remembered about them may be trusted.
        with self._lock:
            self._lists.forget_threads(thread_ids)
            self._heads.drop(lambda key: key[0] in thread_ids)
            self._known.drop(lambda key: key[0] in thread_ids)

    # -- DeltaChannel --------------------------------------------------------------------------

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """Per channel, the writes on the target's ancestor path since the nearest stored value.

        Walks parent links from the target's parent; each channel stops at
        the first ancestor holding a value for it (its ``seed``) and collects
        the writes of every ancestor visited (the seed ancestor's included),
        oldest first and by ``writes_sort_key`` within a checkpoint.
        """
        if not channels:
            return {}
        self._ready()
        self.flush()
        thread_id, ns, checkpoint_id = address(config)
        walk = maintenance.delta_walk(self.db, thread_id, ns, checkpoint_id, list(channels))
        all_ids = sorted({cid for ids in walk.chain.values() for cid in ids})
        write_rows = fetch_writes(self.db, thread_id, ns, all_ids)
        seed_refs = {h for h in walk.seed_ref.values() if h is not None}
        seeds = load_refs(self.db, thread_id, seed_refs | write_refs(write_rows))
        writes = decode_writes(self.serde, thread_id, write_rows, seeds)
        result: dict[str, DeltaChannelHistory] = {}
        for ch in channels:
            collected = [w for cid in reversed(walk.chain[ch]) for w in writes.get(cid, []) if w[1] == ch]
            entry: DeltaChannelHistory = {"writes": collected}
            if ch in walk.seed_inline:
                entry["seed"] = walk.seed_inline[ch]
            elif (h := walk.seed_ref.get(ch)) is not None and h in seeds:
                entry["seed"] = seeds[h].decode(self.serde)
            result[ch] = entry
        return result
