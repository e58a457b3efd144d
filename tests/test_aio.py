"""loomdb.aio: the asyncio variant of Database and Run, on both engines."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

import loomdb
import loomdb.aio

DIM = 4


def vec(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


def test_an_async_agent_persists_resumes_forks_and_merges(store_path):
    async def agent() -> None:
        db = await loomdb.aio.connect(store_path)
        async with db:
            run = await db.run("run-42", dim=DIM)
            assert isinstance(run, loomdb.aio.AsyncRun)
            for step in (1, 2, 3):
                assert await run.persist(step, action=f"act {step}", state={"n": step}, embedding=vec(step))
            assert await run.persist(3, action="act 3", state={"n": 3}, embedding=vec(3)) is False
            resumed = await run.resume()
            assert (resumed.state, resumed.next_step) == ({"n": 3}, 4)
            assert (await run.last()).step == 3 and (await run.get(2)).action == "act 2"
            assert [s.step for s in await run.steps(after=1)] == [2, 3]
            assert (await run.similar(vec(2), k=1))[0].step == 2
            fork = await run.fork(at_step=3)
            assert isinstance(fork, loomdb.aio.AsyncRun) and fork.branch == "run-42/fork-3"
            await fork.persist(4, action="explore")
            result = await fork.merge(into="main")
            assert result.tables["iterations"].added == 1
            assert [s.action for s in await run.steps(after=3)] == ["explore"]
            assert [c.id for c in await db.log(limit=1)] == [await db.head()]

    asyncio.run(agent())
    db = loomdb.connect(store_path)  # what the async agent wrote is there for everyone
    assert [s.step for s in db.run("run-42").steps()] == [1, 2, 3, 4]
    db.close()


def test_async_errors_are_loomdbs_errors(store_path):
    async def agent() -> None:
        async with await loomdb.aio.connect(store_path) as db:
            run = await db.run("run-42", dim=DIM)
            await run.persist(1, action="a")
            with pytest.raises(loomdb.StepConflictError):
                await run.persist(1, action="b")
            with pytest.raises(loomdb.ProgrammingError, match="syntax"):
                await db.execute("SELEC 1")
            with pytest.raises(loomdb.StepNotFoundError):
                await run.fork(at_step=7)

    asyncio.run(agent())


def test_a_call_waiting_for_a_lock_does_not_block_the_event_loop(store_path):
    setup = loomdb.connect(store_path)
    setup.run("run-42", dim=DIM)
    blocker = loomdb.connect(store_path)
    holding, release = threading.Event(), threading.Event()

    def hold_the_write_lock() -> None:
        with blocker.transaction():
            blocker.execute("INSERT INTO iterations (run_id, step) VALUES ('other', 1)")
            holding.set()
            release.wait()

    async def agent() -> None:
        db = await loomdb.aio.connect(store_path, timeout=20)
        run = await db.run("run-42")
        thread = threading.Thread(target=hold_the_write_lock)
        thread.start()
        await asyncio.to_thread(holding.wait)
        persist = asyncio.create_task(run.persist(1, action="a"))
        for _ in range(20):  # the loop keeps running while persist waits for the lock
            await asyncio.sleep(0)
        assert not persist.done()
        release.set()  # only this coroutine can let persist through
        assert await persist is True
        await asyncio.to_thread(thread.join)
        await db.close()

    try:
        asyncio.run(agent())
    finally:
        release.set()
        blocker.close()
    assert [s.step for s in setup.run("run-42").steps()] == [1]
    setup.close()


def test_a_transaction_block_keeps_other_tasks_statements_out(store_path):
    async def agent() -> None:
        async with await loomdb.aio.connect(store_path) as db:
            run = await db.run("run-42", dim=DIM)
            inside, finish = asyncio.Event(), asyncio.Event()

            async def block() -> None:
                with pytest.raises(RuntimeError):
                    async with db.transaction():
                        await run.persist(1, action="rolled back")
                        inside.set()
                        await finish.wait()
                        raise RuntimeError("the model call failed")

            task = asyncio.create_task(block())
            await inside.wait()
            other = asyncio.create_task(run.persist(2, action="other task"))
            for _ in range(20):
                await asyncio.sleep(0)
            assert not other.done()  # it waits for the block
            finish.set()
            await task
            assert await other is True
            assert [(s.step, s.action) for s in await run.steps()] == [(2, "other task")]

    asyncio.run(agent())


def test_calls_inside_a_block_and_from_tasks_it_starts_make_one_commit(store_path):
    async def agent() -> None:
        async with await loomdb.aio.connect(store_path) as db:
            run = await db.run("run-42", dim=DIM)
            before = len(await db.log())
            async with db.transaction(message="two steps") as tx:
                assert tx is db
                await asyncio.gather(run.persist(1, action="a"), run.persist(2, action="b"))
                async with db.transaction():  # nested blocks join the outer one
                    await db.execute("INSERT INTO iterations (run_id, step) VALUES ('other', 1)")
            log = await db.log()
            assert len(log) == before + 1 and log[0].message == "two steps"
            assert [s.step for s in await run.steps()] == [1, 2]

    asyncio.run(agent())


def test_cancelling_a_transaction_block_rolls_it_back(store_path):
    async def agent() -> None:
        async with await loomdb.aio.connect(store_path) as db:
            run = await db.run("run-42", dim=DIM)
            inside = asyncio.Event()

            async def block() -> None:
                async with db.transaction():
                    await run.persist(1, action="a")
                    inside.set()
                    await asyncio.Event().wait()  # never set: cancelled here

            task = asyncio.create_task(block())
            await inside.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await run.last() is None
            assert await run.persist(1, action="after") is True

    asyncio.run(agent())


def test_async_database_mirrors_branch_diff_and_fetch(store_path):
    async def agent() -> None:
        async with await loomdb.aio.connect(store_path) as db:
            await db.execute("CREATE TABLE notes (id INT PRIMARY KEY, body TEXT)")
            await db.executemany("INSERT INTO notes VALUES (%s, %s)", [(1, "a"), (2, "b")])
            done = await db.execute_batch(
                [
                    ("INSERT INTO notes VALUES (%s, %s) ON CONFLICT DO NOTHING", [(2, "x"), (3, "c")]),
                    ("DELETE FROM notes WHERE id = %s", [(3,)]),
                ]
            )
            assert [c.rowcount for c in done] == [1, 1]
            side = await db.branch("side")
            assert isinstance(side, loomdb.aio.AsyncDatabase) and side.branch_name == "side"
            await side.execute("UPDATE notes SET body = 'B' WHERE id = 2")
            changes = await db.diff("main", "side")
            assert [(c.kind, c.key) for c in changes] == [("modified", {"id": 2})]
            assert (await db.diff_stat("main", "side"))["notes"].modified == 1
            assert (await db.fetchone("SELECT body FROM notes WHERE id = 2"))["body"] == "b"
            await db.merge("side")
            assert [r["body"] for r in await db.fetchall("SELECT body FROM notes ORDER BY id")] == ["a", "B"]
            assert {b.name for b in await db.branches()} == {"main", "side"}
            old = await db.as_of((await db.log())[1].id)
            assert old.read_only and (await old.fetchone("SELECT body FROM notes WHERE id = 2"))[0] == "b"
            assert await db.run_sync(lambda: db.sync.execute("SELECT count(*) FROM notes").fetchone()[0]) == 2

    asyncio.run(agent())


def test_a_closed_async_connection_raises_interface_error(store_path):
    async def agent() -> None:
        db = await loomdb.aio.connect(store_path)
        await db.close()
        assert db.closed
        with pytest.raises(loomdb.InterfaceError):
            await db.execute("SELECT 1")
        await db.close()  # closing again is harmless

    asyncio.run(agent())


def test_connect_errors_surface_from_the_await(tmp_path):
    async def agent() -> None:
        with pytest.raises(loomdb.OperationalError):
            await loomdb.aio.connect(str(tmp_path / "missing.loom"), create=False)

    asyncio.run(agent())
