"""An apsw VFS that simulates a power cut: writes sit in a "page cache" until xSync.

Model (what a power cut may lose, and what it may not)
-----------------------------------------------------
* Every named file SQLite opens (main database, ``-wal``, rollback journal) has
  one shared in-memory image per path, like the OS page cache: all handles of
  this process read and write that image, so reads always see earlier writes.
  The image persists across close/reopen within the process, as a page cache
  does. Writes and truncations are also appended to the path's list of
  *pending* operations.
* ``xSync`` on any handle of a path applies that path's pending operations, in
  order, to the real file (with ``os.pwrite``/``os.ftruncate`` on one
  descriptor per path kept open for the life of the VFS, so that closing it never
  drops SQLite's POSIX locks). Only then is data "on the platter".
* ``cut()`` is the power cut. In ``"drop"`` mode every pending operation is
  lost. In ``"random"`` mode each pending operation independently either
  reached the disk before the cut or not (write-back in any order, as SQLite's
  atomic-commit design assumes); whole ``xWrite`` calls are the unit, so a
  torn sector is not modelled. After the cut the machine is dead: every
  xWrite, xTruncate, xSync and xDelete from this process is silently
  discarded as far as the real files go, so closing handles or a checkpoint on
  close cannot leak data to disk. The image (the dying machine's RAM) keeps
  taking writes, so the process still sees a consistent file until it exits.
* ``cut_at_op``: the cut can fire by itself just before the N-th mutating call
  (xWrite, xTruncate or xSync), i.e. at an arbitrary point inside a commit.
* ``xDelete`` before the cut is applied at once and is durable (directory
  operations are treated as synchronous, as SQLite's unix VFS fsyncs the
  directory when it needs to); a lost directory entry is not modelled.
* Locking and the WAL index (``-shm``, xShm*) pass through to the default VFS
  unchanged: the ``-shm`` file is not durable state, and a fresh process that
  opens the store first rebuilds it from the real ``-wal`` file. Run the
  verification in a process that never opened the file through this VFS
  (SQLite shares open-file state between connections of one process).
* Anonymous temporary files and delete-on-close files go straight to the
  default VFS (they do not survive any crash anyway).
* ``SQLITE_FCNTL_SIZE_HINT`` is swallowed, so the default VFS never grows the
  real file behind the image's back. Memory-mapped I/O cannot bypass xRead:
  apsw's Python files do not offer xFetch (``PRAGMA mmap_size`` answers 0).
"""

from __future__ import annotations

import os
import random
import threading

import apsw

SQLITE_FCNTL_SIZE_HINT = 5


class _FileState:
    """The page cache of one path: its current image and the unsynced operations."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR)
        size = os.fstat(self.fd).st_size
        chunks = []
        pos = 0
        while pos < size:
            chunk = os.pread(self.fd, size - pos, pos)
            if not chunk:
                break
            chunks.append(chunk)
            pos += len(chunk)
        self.image = bytearray(b"".join(chunks))
        self.pending: list[tuple] = []  # ("w", offset, bytes) | ("t", size)

    def apply(self, op: tuple) -> None:
        if op[0] == "w":
            _, offset, data = op
            view = memoryview(data)
            while view:
                written = os.pwrite(self.fd, view, offset)
                view = view[written:]
                offset += written
        else:
            os.ftruncate(self.fd, op[1])

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _filename(name) -> str | None:
    if name is None:
        return None
    if isinstance(name, str):
        return name
    return name.filename()


class PowerCutFile(apsw.VFSFile):
    """A file whose data lives in the VFS's page cache; locks and xShm* go to the base."""

    def __init__(self, vfs: PowerCutVFS, name, flags, state: _FileState | None) -> None:
        super().__init__("", name, flags)
        self._vfs = vfs
        self._path = _filename(name)
        if state is None:
            state = vfs._state_for(self._path)
        self._state = state

    # -- data -------------------------------------------------------------
    def xRead(self, amount: int, offset: int) -> bytes:
        with self._vfs._lock:
            self._vfs.reads += 1
            # A short result makes apsw zero-fill and report SQLITE_IOERR_SHORT_READ.
            return bytes(self._state.image[offset : offset + amount])

    def xWrite(self, data, offset: int) -> None:
        vfs = self._vfs
        with vfs._lock:
            dead = vfs._tick()
            data = bytes(data)
            img = self._state.image
            end = offset + len(data)
            if len(img) < offset:
                img.extend(b"\0" * (offset - len(img)))
            img[offset:end] = data
            if not dead:
                self._state.pending.append(("w", offset, data))
                vfs.writes += 1

    def xTruncate(self, newsize: int) -> None:
        vfs = self._vfs
        with vfs._lock:
            dead = vfs._tick()
            img = self._state.image
            if newsize < len(img):
                del img[newsize:]
            else:
                img.extend(b"\0" * (newsize - len(img)))
            if not dead:
                self._state.pending.append(("t", newsize))
                vfs.truncates += 1

    def xSync(self, flags: int) -> None:
        vfs = self._vfs
        with vfs._lock:
            if vfs._tick():
                return
            state = self._state
            for op in state.pending:
                state.apply(op)
            state.pending.clear()
            vfs.syncs += 1

    def xFileSize(self) -> int:
        with self._vfs._lock:
            return len(self._state.image)

    def xFileControl(self, op: int, ptr: int) -> bool:
        if op == SQLITE_FCNTL_SIZE_HINT:
            return True  # handled: never let the base VFS grow the real file
        return super().xFileControl(op, ptr)


class PowerCutVFS(apsw.VFS):
    """Register with ``PowerCutVFS("powercut")``; open with ``vfs="powercut"``."""

    def __init__(self, name: str = "powercut", *, cut_mode: str = "drop", seed: int = 0) -> None:
        if cut_mode not in ("drop", "random"):
            raise ValueError(cut_mode)
        self.vfs_name = name
        self.cut_mode = cut_mode
        self.rng = random.Random(seed)
        self._lock = threading.RLock()
        self._states: dict[str, _FileState] = {}
        self.opened: list[str] = []
        self.ops = 0  # mutating calls seen (xWrite, xTruncate, xSync), before and after the cut
        self.cut_at_op: int | None = None
        self.cut_done = False
        self.cut_info: dict = {}
        self.reads = self.writes = self.truncates = self.syncs = self.deletes = 0
        self.dropped_after_cut = 0
        super().__init__(name, "")

    # -- page cache -------------------------------------------------------
    def _state_for(self, path: str) -> _FileState:
        state = self._states.get(path)
        if state is None:
            state = self._states[path] = _FileState(path)
        return state

    def _tick(self) -> bool:
        """Count one mutating call; fire a scheduled cut. True: it must not reach the disk."""
        self.ops += 1
        if not self.cut_done and self.cut_at_op is not None and self.ops >= self.cut_at_op:
            self.cut()
        if self.cut_done:
            self.dropped_after_cut += 1
            return True
        return False

    def pending_ops(self) -> int:
        with self._lock:
            return sum(len(s.pending) for s in self._states.values())

    def cut(self) -> dict:
        """Pull the plug: unsynced operations are lost (all, or a random subset)."""
        with self._lock:
            if self.cut_done:
                return self.cut_info
            applied = lost = 0
            for state in self._states.values():
                for op in state.pending:
                    if self.cut_mode == "random" and self.rng.random() < 0.5:
                        state.apply(op)
                        applied += 1
                    else:
                        lost += 1
                state.pending.clear()
            self.cut_done = True
            self.cut_info = {"at_op": self.ops, "applied": applied, "lost": lost}
            return self.cut_info

    def close_files(self) -> None:
        """Close the per-path descriptors; only once no connection uses these files."""
        with self._lock:
            for state in self._states.values():
                state.close()
            self._states.clear()

    # -- VFS methods ------------------------------------------------------
    def xOpen(self, name, flags):
        path = _filename(name)
        if path is None or flags[0] & apsw.mapping_open_flags["SQLITE_OPEN_DELETEONCLOSE"]:
            return apsw.VFSFile("", name, flags)
        with self._lock:
            self.opened.append(path)
        # The base open creates the real file if needed; the state then reads it.
        return PowerCutFile(self, name, flags, None)

    def xDelete(self, filename: str, syncdir: bool) -> None:
        with self._lock:
            if self.cut_done:
                self.dropped_after_cut += 1
                return
            self.deletes += 1
            state = self._states.pop(filename, None)
            if state is not None:
                state.close()
        super().xDelete(filename, syncdir)
