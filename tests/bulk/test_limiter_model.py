"""A model-based test of the client-wide limiter (hypothesis stateful).

The real :class:`Limiter` runs on an event loop whose clock only moves when
the test says so. Tasks take places, finish, get 429s (with and without a
pause), report successes and get cancelled in any order hypothesis picks;
after every step the loop runs until nothing is ready, and the invariants
below must hold. The chief one: whenever a place is free and no pause is in
force, nobody is left waiting.
"""

from __future__ import annotations

import asyncio
import itertools

import attrs
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from external_messages_async._limiter import Limiter


class FakeClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock moves only when the test advances it."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0

    def time(self) -> float:
        return self.now


@attrs.define(eq=False)
class Job:
    """One attempt: queues for a place, then holds it until told how to end."""

    number: int
    release: asyncio.Event
    task: asyncio.Task[None] | None = None
    inside: bool = False
    ending: str = "success"
    retry_after: float | None = None


class LimiterModel(RuleBasedStateMachine):
    jobs = Bundle("jobs")

    def __init__(self) -> None:
        super().__init__()
        self.loop = FakeClockLoop()
        self.limiter = Limiter(None)
        self.numbers = itertools.count()
        self.live: list[Job] = []
        self.waiting_jobs: set[int] = set()
        self.violations: list[str] = []

    def spin(self) -> None:
        """Run the loop until every task that can run has run."""
        spin(self.loop)

    @initialize(max_concurrency=st.one_of(st.none(), st.integers(1, 4)))
    def start(self, max_concurrency: int | None) -> None:
        self.limiter = Limiter(max_concurrency)

    async def _hold(self, job: Job) -> None:
        limiter = self.limiter
        async with limiter.slot() as epoch:
            now = self.loop.time()
            if limiter.paused(now):
                self.violations.append(f"job {job.number} started during a pause")
            if limiter.limit is not None and limiter.in_flight > limiter.limit:
                self.violations.append(f"job {job.number} started over the cap")
            older = sorted(n for n in self.waiting_jobs if n < job.number)
            if older:
                self.violations.append(f"job {job.number} overtook {older}")
            self.waiting_jobs.discard(job.number)
            job.inside = True
            try:
                await job.release.wait()
                if job.ending == "429":
                    limiter.on_rate_limited(job.retry_after, epoch=epoch)
                else:
                    limiter.on_success()
            finally:
                job.inside = False

    @rule(target=jobs)
    def acquire(self) -> Job:
        job = Job(next(self.numbers), asyncio.Event())
        self.waiting_jobs.add(job.number)
        job.task = self.loop.create_task(self._hold(job))
        self.live.append(job)
        self.spin()
        return job

    @rule(job=consumes(jobs))
    def succeed(self, job: Job) -> None:
        job.ending = "success"
        job.release.set()
        self.spin()

    @rule(
        job=consumes(jobs),
        retry_after=st.sampled_from([None, 0.0, 0.25, 1.0, 5.0]),
    )
    def rate_limited(self, job: Job, retry_after: float | None) -> None:
        job.ending = "429"
        job.retry_after = retry_after
        job.release.set()
        self.spin()

    @rule(job=consumes(jobs))
    def cancel(self, job: Job) -> None:
        assert job.task is not None
        job.task.cancel()
        self.waiting_jobs.discard(job.number)
        self.spin()

    @rule(seconds=st.sampled_from([0.1, 0.25, 1.0, 6.0]))
    def clock_moves(self, seconds: float) -> None:
        self.loop.now += seconds
        self.spin()

    @rule()
    def pause_ends(self) -> None:
        self.loop.now = max(self.loop.now, self.limiter.state.paused_until)
        self.spin()

    @invariant()
    def nothing_went_wrong(self) -> None:
        assert self.violations == []

    @invariant()
    def in_flight_counts_the_jobs_inside(self) -> None:
        inside = sum(1 for job in self.live if job.inside)
        assert self.limiter.in_flight == inside

    @invariant()
    def nobody_waits_while_a_place_is_free(self) -> None:
        limiter = self.limiter
        if not limiter.waiting:
            return
        paused = limiter.paused(self.loop.time())
        assert paused or not limiter.state.admits(limiter.in_flight), (
            f"{limiter.waiting} waiting, {limiter.in_flight} in flight, "
            f"limit {limiter.limit}, no pause"
        )

    def teardown(self) -> None:
        try:
            for job in self.live:
                assert job.task is not None
                job.task.cancel()
            self.spin()
            assert self.limiter.in_flight == 0
            assert self.limiter.waiting == 0
        finally:
            self.loop.close()


LimiterModel.TestCase.settings = settings(
    max_examples=200, stateful_step_count=30, deadline=None
)
TestLimiterModel = LimiterModel.TestCase


def spin(loop: asyncio.AbstractEventLoop) -> None:
    """Run the loop until every task that can run has run."""
    for _ in range(10):
        # stop() first: run_forever() runs one iteration, then returns.
        loop.stop()
        loop.run_forever()


def run_past(loop: FakeClockLoop, when: float) -> None:
    """Move the clock to ``when`` and run the timers that came due."""
    loop.now = when
    for _ in range(3):
        loop.call_soon(lambda: None)
        spin(loop)


@attrs.define(eq=False)
class PausedQueue:
    """A limiter of one place: job a gets a 1 s 429 while job b waits."""

    loop: FakeClockLoop = attrs.field(factory=FakeClockLoop)
    limiter: Limiter = attrs.field(factory=lambda: Limiter(1))
    order: list[str] = attrs.field(factory=list)
    tasks: list[asyncio.Task[None]] = attrs.field(factory=list)

    async def _rate_limited(self, release: asyncio.Event) -> None:
        async with self.limiter.slot() as epoch:
            await release.wait()
            self.limiter.on_rate_limited(1.0, epoch=epoch)

    async def _later(self, name: str) -> None:
        async with self.limiter.slot():
            self.order.append(name)

    def start(self) -> None:
        release = asyncio.Event()
        self.tasks += [
            self.loop.create_task(self._rate_limited(release)),
            self.loop.create_task(self._later("b")),
        ]
        spin(self.loop)
        release.set()
        spin(self.loop)

    def queue(self, name: str) -> None:
        self.tasks.append(self.loop.create_task(self._later(name)))
        spin(self.loop)


def test_a_second_waiter_during_a_pause_keeps_the_one_pause_timer() -> None:
    """Queueing again during a pause re-uses the timer armed for its end."""
    queue = PausedQueue()
    try:
        queue.start()
        timer = queue.limiter._timer
        queue.queue("c")

        assert timer is not None
        assert queue.limiter._timer is timer
        assert queue.order == []

        run_past(queue.loop, 1001.0)
        assert queue.order == ["b", "c"]
        assert all(task.done() for task in queue.tasks)
    finally:
        queue.loop.close()


def test_a_longer_pause_replaces_the_timer_armed_for_the_shorter_one() -> None:
    """Waiters are held until the later end when a second 429 extends a pause."""
    queue = PausedQueue()

    async def another_429() -> None:
        queue.limiter.on_rate_limited(2.0)

    try:
        queue.start()
        short = queue.limiter._timer
        queue.loop.now += 0.5
        queue.loop.run_until_complete(another_429())
        queue.queue("c")

        assert short is not None
        assert short.cancelled()
        assert queue.limiter._timer is not None
        assert queue.limiter._timer.when() == 1002.5

        queue.loop.now = 1001.0
        spin(queue.loop)
        assert queue.order == []

        run_past(queue.loop, 1002.5)
        assert queue.order == ["b", "c"]
        assert all(task.done() for task in queue.tasks)
    finally:
        queue.loop.close()
