"""LangGraph configs as LoomSaver reads and makes them: the checkpoint a
``RunnableConfig`` names, and the config that names a stored checkpoint."""

from __future__ import annotations

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import get_checkpoint_id

from ... import errors


def address(config: RunnableConfig) -> tuple[str, str, str | None]:
    """``(thread_id, checkpoint_ns, checkpoint_id)`` of a config; ProgrammingError without a thread."""
    configurable = (config or {}).get("configurable") or {}
    thread_id = configurable.get("thread_id")
    if thread_id is None:
        raise errors.ProgrammingError("config['configurable'] needs a 'thread_id'")
    return str(thread_id), configurable.get("checkpoint_ns") or "", get_checkpoint_id(config)


def checkpoint_config(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    """The config naming checkpoint ``checkpoint_id`` of thread ``thread_id`` in namespace ``ns``."""
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}}
