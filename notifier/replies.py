"""Sending the bot's replies to residents' own messages, after the provider has been answered.

A webhook answers the provider as soon as the turn is committed; the reply goes out afterwards,
since sending takes a round trip to the provider and may have to wait out a 429 or an outage.
Two parts:

* ``ReplySender`` sends in this process: one chain of tasks per resident (so replies keep their
  order), paced per channel, retried with back-off while the provider is down, each sent message
  logged with the provider's id (``notifier.delivery_log``). It holds at most ``max_pending``
  replies per channel: past that, ``wait_for_room`` makes the webhook wait, so a flood slows the
  providers' deliveries down instead of growing memory without bound, and a channel held back by
  its provider's limits (Telegram: 30 messages/s, 1 per chat per second) never holds up another.
* ``ReplyStream`` (with Redis) reads one channel's stream of the reply queue
  (``notifier.reply_queue``, which owns the streams' names, the entries' format and each
  resident's order), where the turn loop commits each reply in the same script that saves the
  conversation state. Every sending process reads the streams in one consumer group (each
  reply goes to one of them), hands the replies to its ``ReplySender`` and acknowledges (and
  deletes) each entry once it is sent or has finally failed. Entries a process took but did not finish (it was killed) are
  claimed by another process, or by the same one restarted, once they have been idle for
  ``claim_idle`` seconds; a live process keeps touching the entries it is still sending (retries
  can take minutes), so they are never sent twice while it lives. A process killed after sending
  but before acknowledging does send that reply twice: at least once, never lost. Each
  resident's replies keep their order whichever processes take them
  (``notifier.reply_queue.ReplyOrder``): a reply waits while the one before it is still being
  sent elsewhere.
* ``Replies`` puts them together for one process: the sender, its delivery log (group
  committed) and, with Redis and ``send_replies``, a stream reader per provider channel.

Without Redis (the embedded default) each turn commits its reply in the database
(``notifier.reply_outbox``) and this process sends it from memory, deleting the row once sent; a
reply in flight when the process is killed is sent when the next one starts.

Example::

    sender = ReplySender(record=lambda sent: record_deliveries(sessions, sent))
    sender.schedule(channel, channel.render(effects, "en", address))
    stream = ReplyStream(redis, ReplyQueue(layout), sms_channel, sender, shard=0)
    stream.start()                               # with Redis: sends what the turns queued
    await stream.stop(); await sender.drain(10, queued=False); await stream.close()  # shutdown
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, ReadOnlyError, RedisError, ResponseError

from channels.base import BaseChannel
from channels.retrying import DEFAULT_BACKOFF, send_with_retries
from channels.types import Delivery, DeliveryStatus, OutboundMessage
from notifier.delivery_log import Sent
from notifier.message_trace import MessageTrace
from notifier.reply_queue import GROUP, QueuedReply, ReplyOrder, ReplyQueue, UnreadableEntry
from storage.redis import outage_of, replica_wait_of
from storage.sql_batch import SqlBatcher

if TYPE_CHECKING:  # it sends through ReplySender, defined here
    from notifier.reply_outbox import ReplyOutbox

__all__ = ["CountSent", "Replies", "ReplySender", "ReplyStream"]

log = logging.getLogger("citybot.replies")

Record = Callable[[Sent], Awaitable[None]]
# Told how many messages a channel's provider took (sent or queued), for citybot_messages_out.
CountSent = Callable[[str, int], None]
_ACCEPTED = (DeliveryStatus.SENT, DeliveryStatus.QUEUED, DeliveryStatus.DELIVERED)


# -- sending in this process ------------------------------------------------------------------


class ReplySender:
    """Send replies in order per resident, paced, retried, logged; never more than
    ``max_pending`` at once on one channel."""

    def __init__(
        self,
        record: Record | None = None,
        *,
        count_sent: CountSent | None = None,
        attempts: int = 8,
        backoff: Sequence[float] = DEFAULT_BACKOFF,
        max_pending: int = 5000,
    ) -> None:
        self._record = record
        self._count_sent = count_sent
        self.attempts = attempts
        self.backoff = tuple(backoff)
        self.max_pending = max_pending
        self._tasks: set[asyncio.Task[None]] = set()
        # The last chain per (channel, address): a new batch waits for it, so order holds.
        self._tails: dict[tuple[str, str], asyncio.Task[None]] = {}
        # Replies being sent per channel, and whether that channel has room for more: a
        # channel held back by its provider's limits never keeps another channel waiting.
        self._pending: Counter[str] = Counter()
        self._room: dict[str, asyncio.Event] = {}
        # Whether turns commit their replies on Redis streams rather than hand them here. The
        # streams this process reads are below (none where other processes send the replies);
        # ``drain`` waits for what they hold too.
        self.queues_in_turn = False
        self.streams: list[ReplyStream] = []

    def schedule(
        self,
        channel: BaseChannel,
        messages: Sequence[OutboundMessage],
        on_done: Callable[[], None] | None = None,
        *,
        trace: MessageTrace | None = None,
    ) -> None:
        """Send ``messages`` (one reply) after this resident's earlier replies; ``on_done``
        runs once they are sent or have finally failed; ``trace`` (the message it answers) is
        logged as replied."""
        if not messages:
            if on_done is not None:
                on_done()
            return
        name = channel.name
        key = (name, messages[0].address)
        previous = self._tails.get(key)
        task = asyncio.create_task(self._send_all(channel, messages, previous, trace))
        self._tasks.add(task)
        self._tails[key] = task
        self._pending[name] += 1
        if self._pending[name] >= self.max_pending:
            self._room_of(name).clear()

        def done(finished: asyncio.Task[None]) -> None:
            self._tasks.discard(finished)
            if self._tails.get(key) is finished:
                del self._tails[key]
            self._pending[name] -= 1
            if self._pending[name] < self.max_pending:
                self._room_of(name).set()
            if on_done is not None and not finished.cancelled():
                on_done()

        task.add_done_callback(done)

    def room(self, channel: str) -> int:
        """How many more replies on ``channel`` may be taken on now."""
        return max(0, self.max_pending - self._pending[channel])

    async def wait_for_room(self, channel: str) -> None:
        """Return once fewer than ``max_pending`` replies on ``channel`` are being sent."""
        await self._room_of(channel).wait()

    def _room_of(self, channel: str) -> asyncio.Event:
        event = self._room.get(channel)
        if event is None:
            event = self._room[channel] = asyncio.Event()
            event.set()
        return event

    async def _send_all(
        self,
        channel: BaseChannel,
        messages: Sequence[OutboundMessage],
        previous: asyncio.Task[None] | None,
        trace: MessageTrace | None = None,
    ) -> None:
        if previous is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(previous)
        started = time.monotonic()
        pacer = getattr(channel, "pacer", None)
        sent: list[tuple[OutboundMessage, Delivery]] = []
        for message in messages:
            delivery = await send_with_retries(
                channel, message, pacer=pacer, attempts=self.attempts, backoff=self.backoff
            )
            sent.append((message, delivery))
            if delivery.status not in (DeliveryStatus.SENT, DeliveryStatus.QUEUED):
                log.warning(
                    "reply not delivered",
                    extra={
                        "channel": channel.name,
                        "status": delivery.status.value,
                        "code": delivery.error_code,
                    },
                )
            if delivery.status is DeliveryStatus.UNREACHABLE:
                break  # the rest of the reply would fail the same way
        if trace is not None and sent:
            trace.replied(
                status=sent[-1][1].status.value,
                messages=len(sent),
                send_seconds=time.monotonic() - started,
            )
        if self._count_sent is not None:
            self._count_sent(channel.name, sum(d.status in _ACCEPTED for _, d in sent))
        if self._record is not None:
            try:
                await self._record(sent)
            except Exception:
                log.exception("could not log sent messages", extra={"channel": channel.name})

    def spawn(self, work: Awaitable[None]) -> None:
        """Run a small follow-up (answering a Telegram button tap) with a reference kept."""

        async def run() -> None:
            await work

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def cancel(self) -> None:
        """Stop every send still in flight (on shutdown, after ``drain`` gave up): with a
        stream their entries stay queued for the next process; without, they are lost."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def drain(self, timeout: float, *, queued: bool = True) -> bool:
        """Wait for every reply in flight here and, with ``queued``, every reply on the stream;
        False if ``timeout`` passed first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for stream in self.streams if queued else ():
            if not await stream.wait_empty(max(0.0, deadline - loop.time())):
                return False
        if not self._tasks:
            return True
        _, still = await asyncio.wait(set(self._tasks), timeout=max(0.0, deadline - loop.time()))
        return not still


# -- the durable queue (Redis) ----------------------------------------------------------------

# How often held replies (waiting for a resident's earlier reply, sent by another process) are
# looked at again.
HELD_RECHECK_SECONDS = 0.05


@dataclass
class _Held:
    entry_id: str
    key: str  # the resident's order hash
    seq: int
    messages: list[OutboundMessage]
    trace: MessageTrace | None = None
    since: float = field(default_factory=lambda: asyncio.get_running_loop().time())


class ReplyStream:
    """Read one stream of the reply queue (``channel``'s in ``shard``; or ``stream``, named
    outright: an old layout's, drained after an upgrade) in the consumer group and send each
    reply through ``sender``."""

    def __init__(
        self,
        redis: Redis,
        queue: ReplyQueue,
        channel: BaseChannel,
        sender: ReplySender,
        *,
        batch: int = 256,
        block: float = 1.0,
        claim_idle: float = 60.0,
        consumer: str | None = None,
        shard: int = 0,
        stream: str | None = None,
    ) -> None:
        self.redis = redis
        self.stream = stream or queue.stream(channel.name, shard)
        self.channel = channel
        self.sender = sender
        self.batch = batch
        self.block = block
        self.claim_idle = claim_idle
        self.consumer = consumer or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        # Entries taken and not yet acknowledged, and those done and waiting to be.
        self._in_flight: set[str] = set()
        self._done: list[str] = []
        # Finished and not yet acknowledged: a failover that lost the read (the primary died
        # before its replica had it) hands such an entry out again as new; it is not sent twice.
        self._unacked: set[str] = set()
        # Each resident's replies in order across processes (``notifier.reply_order``): the
        # numbers of the entries taken, those finished, and the entries held back meanwhile.
        self.order = ReplyOrder(redis)
        self._numbered: dict[str, tuple[str, int]] = {}
        self._done_numbers: list[tuple[str, int]] = []
        self._held: dict[str, _Held] = {}
        self._holding = asyncio.Event()
        # The reply before a held one is finished by then or its process died and the claim
        # took it over; past this, something was lost (an expired hash), so it goes anyway.
        self.max_hold = 2 * claim_idle + 30.0
        self._acked = asyncio.Event()
        self._done_ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._grouped = asyncio.Event()  # claims wait for the reader to make the group
        # Redis going away is logged once for the process, with a count, not per failed call.
        self.outage = outage_of(redis)

    def start(self) -> None:
        """Start reading the stream (and claiming what stopped processes left)."""
        self._tasks = [
            asyncio.create_task(self._read_forever(), name="reply-stream-read"),
            asyncio.create_task(self._claim_forever(), name="reply-stream-claims"),
            asyncio.create_task(self._release_forever(), name="reply-stream-held"),
            asyncio.create_task(self._ack_forever(), name="reply-stream-acks"),
        ]

    async def stop(self) -> None:
        """Take no more entries; what this process is sending is still acknowledged (held
        entries stay pending, for a claim)."""
        for task in self._tasks[:3]:
            task.cancel()
        for task in self._tasks[:3]:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close(self) -> None:
        """Acknowledge what was sent; entries still in flight stay pending for a claim."""
        await self.stop()
        for task in self._tasks[3:]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        try:
            await self._flush_acks()
        except Exception:
            log.warning("could not acknowledge sent replies; they may be sent again", exc_info=True)

    async def _read_forever(self) -> None:
        grouped = False
        failed = False
        while True:
            await self.sender.wait_for_room(self.channel.name)
            room = self.sender.room(self.channel.name) - len(self._held)
            room = max(1, min(self.batch, room))
            try:
                if not grouped:
                    await self._ensure_group()
                    grouped = True
                    self._grouped.set()
                read = await self._read(room)
            except ReadOnlyError as exc:
                # A replica during a failover: Redis is away for writing, as when it is down.
                self.outage.failed("reading the reply stream", exc)
                failed = True
                await asyncio.sleep(1.0)
                continue
            except ResponseError as exc:
                if str(exc).startswith(("NOGROUP", "UNBLOCKED")):
                    # The stream was deleted (by hand, or evicted): make it and the group again.
                    log.warning("the reply stream or its group was gone; creating it again")
                    grouped = False
                    continue
                log.error("reading the reply stream failed; will retry", exc_info=True)
                await asyncio.sleep(1.0)
                continue
            except (OSError, RedisError) as exc:
                # Redis is down: the replies wait on the stream; /readyz reports it.
                self.outage.failed("reading the reply stream", exc)
                failed = True
                await asyncio.sleep(1.0)
                continue
            self.outage.recovered()
            for _, entries in cast(list[tuple[Any, Any]], read or []):
                await self._take(entries)
            if failed:
                failed = not await self._take_back_lost_reads()

    async def _take_back_lost_reads(self) -> bool:
        """After a failed read: the entries a read made this consumer's whose answer never came
        (Redis went away mid-read, a failover, a ``WAIT`` that failed), taken back now rather
        than by a claim ``claim_idle`` later. Whether that worked."""
        try:
            pending = await self.redis.xpending_range(
                self.stream, GROUP, min="-", max="+", count=1000, consumername=self.consumer
            )
            known = self._in_flight | self._unacked
            lost: list[str | bytes | int | memoryview[int]] = [
                _text(p["message_id"]) for p in pending if _text(p["message_id"]) not in known
            ]
            if lost:
                claimed: Any = await self.redis.xclaim(self.stream, GROUP, self.consumer, 0, lost)
                await self._take([entry for entry in claimed if entry and entry[1]])
        except (OSError, RedisError) as exc:
            self.outage.failed("taking back replies of a failed read", exc)
            return False
        return True

    async def _read(self, count: int) -> Any:
        """The next entries for this process. Behind Sentinel the read (it makes the entries
        this consumer's) is on a replica before they are sent, on the same connection
        (``storage.redis``): otherwise a failover could hand them out again, as new, to another
        process. A read whose ``WAIT`` fails is not sent here: the entries come back, either as
        new or, pending, through a claim."""
        wait = replica_wait_of(self.redis)
        if wait is None:
            return await self.redis.xreadgroup(
                GROUP, self.consumer, {self.stream: ">"}, count=count, block=int(self.block * 1000)
            )
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xreadgroup(
                GROUP, self.consumer, {self.stream: ">"}, count=count, block=int(self.block * 1000)
            )
            waited = wait.add_to(pipe)
            answers = await pipe.execute()
        if waited:
            wait.saw(answers[-1])
        return answers[0]

    async def wait_empty(self, timeout: float) -> bool:
        """Wait until every queued reply has been sent and acknowledged; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await self.redis.xlen(self.stream):
            if loop.time() >= deadline:
                return False
            self._acked.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._acked.wait(), min(0.05, deadline - loop.time()))
        return True

    async def _take(self, entries: Sequence[tuple[Any, Any]]) -> None:
        waiting: list[_Held] = []
        for raw_id, fields in entries:
            entry_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            if entry_id in self._in_flight or entry_id in self._unacked:
                continue  # claimed back while this process is still sending (or holding) it
            try:
                reply = QueuedReply.from_fields(entry_id, fields)
            except UnreadableEntry:
                log.error("unreadable reply entry dropped", extra={"entry": entry_id})
                reply = QueuedReply(entry_id, "", [], None)
            name, messages, number = reply.channel, reply.messages, reply.number
            if name != self.channel.name or not messages:
                if name and name != self.channel.name:
                    # Written by a process that put it on the wrong stream: nothing can send
                    # it here, and keeping it would only come back at every claim.
                    log.error(
                        "reply on another channel's stream dropped", extra={"entry": entry_id}
                    )
                if number is not None:
                    self._numbered[entry_id] = number  # finished too: the next one may go
                self._finish(entry_id)
                continue
            self._in_flight.add(entry_id)
            if number is None:
                self._send(entry_id, messages, reply.trace)  # from an older version: unnumbered
                continue
            self._numbered[entry_id] = number
            if self.order.follows(*number):
                # Nearly always: the resident's reply before is finished, or in this process's
                # chain (a resident's entries come in order, so a batch's do too).
                self.order.took(*number)
                self._send(entry_id, messages, reply.trace)
                continue
            waiting.append(_Held(entry_id, number[0], number[1], messages, reply.trace))
        if waiting:
            await self._send_in_order(waiting)

    async def _send_in_order(self, waiting: list[_Held]) -> None:
        """Send each entry whose resident's earlier reply is finished or in this process's
        chain; hold the others (``_release_forever`` looks at them again)."""
        waiting.sort(key=lambda held: (held.key, held.seq))
        unknown = [(h.key, h.seq) for h in waiting if not self.order.follows(h.key, h.seq)]
        try:
            answers = dict(zip(unknown, await self.order.ready(unknown), strict=True))
        except (OSError, RedisError) as exc:
            self.outage.failed("reading the replies' order; holding them", exc)
            answers = {}
        now = asyncio.get_running_loop().time()
        for held in waiting:
            overdue = now - held.since >= self.max_hold
            if self.order.follows(held.key, held.seq) or answers.get((held.key, held.seq)):
                self._held.pop(held.entry_id, None)
            elif overdue:
                log.warning(
                    "a reply waited too long for the one before it; sending it",
                    extra={"entry": held.entry_id, "seq": held.seq},
                )
                self._held.pop(held.entry_id, None)
            else:
                self._held[held.entry_id] = held
                self._holding.set()
                continue
            self.order.took(held.key, held.seq)
            self._send(held.entry_id, held.messages, held.trace)

    def _send(
        self, entry_id: str, messages: list[OutboundMessage], trace: MessageTrace | None
    ) -> None:
        self.sender.schedule(
            self.channel,
            messages,
            on_done=functools.partial(self._finish, entry_id),
            trace=trace,
        )

    async def _release_forever(self) -> None:
        while True:
            await self._holding.wait()
            await asyncio.sleep(HELD_RECHECK_SECONDS)
            if not self._held:
                self._holding.clear()
                continue
            await self._send_in_order(list(self._held.values()))

    def _finish(self, entry_id: str) -> None:
        self._in_flight.discard(entry_id)
        self._done.append(entry_id)
        self._unacked.add(entry_id)
        number = self._numbered.pop(entry_id, None)
        if number is not None:
            self._done_numbers.append(number)
        self._done_ready.set()

    async def _ack_forever(self) -> None:
        while True:
            await self._done_ready.wait()
            self._done_ready.clear()
            try:
                await self._flush_acks()
            except (OSError, RedisError) as exc:
                self.outage.failed("acknowledging sent replies", exc)
                await asyncio.sleep(0.5)
                self._done_ready.set()
            except Exception:
                log.warning("acknowledging sent replies failed; will retry", exc_info=True)
                await asyncio.sleep(0.5)
                self._done_ready.set()

    async def _flush_acks(self) -> None:
        if not self._done:
            return
        done, self._done = self._done, []
        numbers, self._done_numbers = self._done_numbers, []
        try:
            try:
                await self._ack(done, numbers)
            except NoScriptError:
                await self.order.load()  # Redis restarted and forgot the script
                await self._ack(done, numbers)
        except BaseException:
            self._done[:0] = done
            self._done_numbers[:0] = numbers
            raise
        self._unacked.difference_update(done)
        self._acked.set()

    async def _ack(self, done: list[str], numbers: list[tuple[str, int]]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xack(self.stream, GROUP, *done)
            pipe.xdel(self.stream, *done)
            self.order.mark_done(pipe, numbers)
            # An acknowledgement a failover lost would have the reply sent again
            # (``storage.redis``): on a replica before the entries are forgotten here.
            wait = replica_wait_of(self.redis)
            waited = wait is not None and wait.add_to(pipe)
            answers = await pipe.execute()
            if waited and wait is not None:
                wait.saw(answers[-1])

    async def _claim_forever(self) -> None:
        """Keep this process's entries fresh and take over those of processes that died."""
        every = self.claim_idle / 4
        await self._grouped.wait()
        while True:
            try:
                await self._touch_in_flight()
                await self._claim_abandoned()
            except asyncio.CancelledError:
                raise
            except (OSError, RedisError) as exc:
                self.outage.failed("claiming idle replies", exc)
            except Exception:
                log.warning("claiming idle replies failed; will retry", exc_info=True)
            await asyncio.sleep(every)

    async def _touch_in_flight(self) -> None:
        ids: list[str | bytes | int | memoryview[int]] = list(self._in_flight)
        for start in range(0, len(ids), 500):
            await self.redis.xclaim(
                self.stream, GROUP, self.consumer, 0, ids[start : start + 500], justid=True
            )

    async def _claim_abandoned(self) -> None:
        cursor: Any = "0-0"
        while True:
            if not self.sender.room(self.channel.name):
                return
            answer = await self.redis.xautoclaim(
                self.stream,
                GROUP,
                self.consumer,
                int(self.claim_idle * 1000),
                start_id=cursor,
                count=self.batch,
            )
            cursor, entries = answer[0], answer[1]
            live = [entry for entry in entries if entry is not None and entry[1]]
            if live:
                log.info("claimed replies of a stopped process", extra={"count": len(live)})
                await self._take(live)
            # Entries deleted while pending come back as ids only: acknowledge them away.
            gone = list(answer[2]) if len(answer) > 2 else []
            if gone:
                await self.redis.xack(self.stream, GROUP, *gone)
            if cursor in (b"0-0", "0-0"):
                return

    async def _ensure_group(self) -> None:
        try:
            # From the start of the stream: replies queued before any consumer existed count.
            await self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# -- one process's replies ------------------------------------------------------------------

# On shutdown, how long cancelled sends and the last acknowledgements may take past the deadline.
CANCEL_SECONDS = 1.0


async def _within(step: Awaitable[None], deadline: float, what: str) -> None:
    """Await ``step`` until ``deadline`` (loop time) at the latest; past it, leave it running.

    Not ``asyncio.wait_for``: that waits for the cancelled step to end, and a task that ignores
    its cancellation (a blocking Redis read has been seen to) would hold the shutdown for good.
    """
    task = asyncio.ensure_future(step)
    left = deadline - asyncio.get_running_loop().time()
    done, _ = await asyncio.wait({task}, timeout=max(0.0, left))
    if not done:
        task.cancel()
        log.warning("shutdown: gave up waiting to %s", what)
        return
    if not task.cancelled() and task.exception() is not None:
        log.warning("shutdown: could not %s", what, exc_info=task.exception())


@dataclass
class Replies:
    """Everything one process needs to send residents' replies: the sender, its delivery log
    (rows group committed) and, with Redis, the readers of the reply queue's streams.

    Example::

        replies = Replies(sender, deliveries, streams)   # built by bot.bootstrap
        replies.start()                                  # readers go (with Redis)
        await replies.stop(timeout=10)    # what was taken is finished or left for a claim
    """

    sender: ReplySender
    deliveries: SqlBatcher[Sent, None]
    # Readers of the reply queue: none without Redis, or where other processes send.
    streams: list[ReplyStream] = field(default_factory=list)
    queue: ReplyQueue | None = None
    # Without Redis: where turns commit their replies until sent (``notifier.reply_outbox``).
    outbox: ReplyOutbox | None = None

    def __post_init__(self) -> None:
        # The sender's drain waits for what the streams hold too.
        self.sender.streams = self.streams

    def start(self) -> None:
        for stream in self.streams:
            stream.start()

    async def stop(self, timeout: float) -> int:
        """Take no more; finish what was taken within ``timeout``; the rest stays queued.
        Returns how many replies were still being sent at the deadline (handed back to the
        stream for another process with Redis; dropped without)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for stream in self.streams:
            # Cancelling a reader takes a moment; one stuck in a Redis read must not use up
            # the time the replies in flight have to finish.
            stopped_by = min(deadline, loop.time() + CANCEL_SECONDS)
            await _within(stream.stop(), stopped_by, "stop reading the reply stream")
        left = 0
        if not await self.sender.drain(max(0.0, deadline - loop.time()), queued=False):
            left = self.sender.pending
            log.warning(
                "shutdown: replies still being sent after the timeout; "
                + ("they stay queued for the next process" if self.streams else "they are dropped"),
                extra={"replies": left},
            )
            # Before the channels close under them; a send that does not end when cancelled
            # is left behind (its entry stays pending on the stream all the same).
            await _within(self.sender.cancel(), loop.time() + CANCEL_SECONDS, "cancel sends")
        for stream in self.streams:
            await _within(stream.close(), loop.time() + CANCEL_SECONDS, "acknowledge replies")
        return left

    async def recover(self, channels: Mapping[str, BaseChannel]) -> int:
        """Without Redis: send the replies a killed process committed and never sent."""
        if self.outbox is None:
            return 0
        return await self.outbox.recover(self.sender, channels)

    async def close(self) -> None:
        """Write the delivery rows still queued, and forget the replies sent."""
        await self.deliveries.close()
        if self.outbox is not None:
            await self.outbox.close()
