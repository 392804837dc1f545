"""Group commit: the small SQL work of many turns in one transaction, each turn still waiting
for the commit before it answers.

With the state in Redis most turns run no SQL, but some must: a first contact finds or creates
its resident, a consent answer or an opt-out updates the resident and writes an audit row. Each of
those used to take a pooled connection, ``BEGIN``, a few statements and ``COMMIT`` of its own; a
city's morning rush of first contacts then queued behind the pool's few connections. A
``SqlBatcher`` queues such work instead; one sender runs everything queued in one transaction
(``run_batch`` turns a list of items into their results, with multi-row statements) and then
hands each caller its result. While one batch is in the database the next one fills, so batches
grow with the load by themselves and a lone item goes at once.

The guarantee a turn had is kept: its work is committed before its caller goes on, and all of
one item's statements commit together. If a batch fails on its data (a constraint), each of its
items is tried again alone, in its own transaction, so one bad item fails only its own turn; if
the database is unreachable, every caller gets the error at once (no item is tried alone against
a database that is down) and its turn is retried by the provider.

Example::

    async def insert_all(connection: AsyncConnection, rows: list[dict]) -> list[None]:
        await connection.execute(insert(audit_log), rows)
        return [None] * len(rows)

    audits = SqlBatcher(engine, insert_all, name="audit")
    await audits.submit({"action": "opt_out", ...})   # returns once committed
    await audits.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.failures import database_unreachable

__all__ = ["BatchClosed", "SqlBatcher"]

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


class BatchClosed(RuntimeError):
    """The batcher was closed before the item was committed."""


@dataclass(slots=True)
class _Waiting(Generic[Item, Result]):
    item: Item
    future: asyncio.Future[Result] = field(repr=False)


class SqlBatcher(Generic[Item, Result]):
    """Runs ``run_batch`` over queued items, one transaction per batch, one batch at a time."""

    def __init__(
        self,
        engine: AsyncEngine,
        run_batch: Callable[[AsyncConnection, list[Item]], Awaitable[list[Result]]],
        *,
        name: str,
        batch: int = 200,
    ) -> None:
        self._engine = engine
        self._run_batch = run_batch
        self._name = name
        self._batch = batch
        self._queue: deque[_Waiting[Item, Result]] = deque()
        self._wake = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._closed = False
        self.batches = 0  # transactions committed (how well items were grouped)

    @property
    def name(self) -> str:
        return self._name

    @property
    def backlog(self) -> int:
        """Items queued and not yet in a transaction (``/metrics``: a backlog that grows means
        the database is slow or down)."""
        return len(self._queue)

    async def submit(self, item: Item) -> Result:
        """Queue ``item``; its result once the transaction holding it committed."""
        if self._closed:
            raise BatchClosed(f"the {self._name} batcher is closed")
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiting(item, future))
        self._wake.set()
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_forever(), name=f"sql-batch:{self._name}")
        return await future

    async def close(self) -> None:
        """Finish the batch in the database, then stop; items still queued fail."""
        self._closed = True
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            self._sender = None
        _fail(list(self._queue), BatchClosed(f"the {self._name} batcher is closed"))
        self._queue.clear()

    async def _send_forever(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            taken = [self._queue.popleft() for _ in range(min(self._batch, len(self._queue)))]
            waiting = [w for w in taken if not w.future.done()]
            if waiting:
                # Shielded: a close() in the middle lets the transaction end either way, and
                # the callers learn which (committed, or failed and not acknowledged).
                work = asyncio.ensure_future(self._commit(waiting))
                try:
                    await asyncio.shield(work)
                except asyncio.CancelledError:
                    with contextlib.suppress(Exception):
                        await work
                    raise

    async def _commit(self, waiting: list[_Waiting[Item, Result]]) -> None:
        try:
            results = await self._transaction([w.item for w in waiting])
        except Exception as exc:
            # Unreachable: trying each item alone would only wait longer.
            if len(waiting) == 1 or database_unreachable(exc):
                _fail(waiting, exc)
                return
            log.warning(
                "%s batch of %d failed; trying each alone",
                self._name,
                len(waiting),
                exc_info=True,
            )
            for one in waiting:
                try:
                    (result,) = await self._transaction([one.item])
                except Exception as alone:
                    _fail([one], alone)
                else:
                    _succeed(one, result)
            return
        for one, result in zip(waiting, results, strict=True):
            _succeed(one, result)

    async def _transaction(self, items: list[Item]) -> list[Result]:
        async with self._engine.begin() as connection:
            results = await self._run_batch(connection, items)
            if len(results) != len(items):  # rolls the batch back
                raise RuntimeError(f"{self._name}: {len(results)} results for {len(items)} items")
        self.batches += 1
        return results


def _succeed(waiting: _Waiting[Item, Result], result: Result) -> None:
    if not waiting.future.done():
        waiting.future.set_result(result)


def _fail(waiting: list[_Waiting[Item, Result]], error: BaseException) -> None:
    for one in waiting:
        if not one.future.done():
            one.future.set_exception(error)
