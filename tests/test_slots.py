"""runtime/slots.py: the FIFO limit behind activations and model calls."""

from __future__ import annotations

import asyncio

import pytest

from runtime.slots import Slots


def test_slots_hold_the_limit_and_serve_waiters_in_arrival_order():
    async def main() -> list[int]:
        slots, order, running, most = Slots(2), [], [0], [0]

        async def holder(i: int) -> None:
            async with slots:
                order.append(i)
                running[0] += 1
                most[0] = max(most[0], running[0])
                await asyncio.sleep(0.001)
                running[0] -= 1

        tasks = [asyncio.ensure_future(holder(i)) for i in range(20)]
        await asyncio.sleep(0)
        assert slots.held == 2 and slots.waiting == 18
        await asyncio.gather(*tasks)
        assert most[0] == 2 and slots.held == 0 and slots.waiting == 0
        return order

    assert asyncio.run(main()) == list(range(20))


def test_a_waiter_cancelled_leaves_the_queue_and_one_cancelled_on_its_turn_passes_it_on():
    async def main() -> None:
        slots = Slots(1)
        await slots.acquire()
        gone = asyncio.ensure_future(slots.acquire())
        late = asyncio.ensure_future(slots.acquire())
        last = asyncio.ensure_future(slots.acquire())
        await asyncio.sleep(0)
        assert slots.waiting == 3
        gone.cancel()  # cancelled while it waits: skipped
        await asyncio.sleep(0)
        assert slots.waiting == 2
        slots.release()  # handed to `late`...
        late.cancel()  # ...which is cancelled before it runs: the slot goes to `last`
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert late.cancelled() and last.done() and not last.cancelled()
        assert slots.held == 1 and slots.waiting == 0
        slots.release()
        assert slots.held == 0
        await slots.acquire()  # free again: no wait
        assert slots.held == 1

    asyncio.run(main())


def test_a_limit_below_one_is_refused():
    with pytest.raises(ValueError):
        Slots(0)


def test_a_newcomer_queued_behind_a_waiter_cancelled_as_the_slot_freed_gets_the_slot():
    """The waiter's cancel, the release and a newcomer's acquire in one step of the loop: the
    newcomer sees a waiter still counted and queues; the cancelled waiter, leaving, wakes it
    (it would otherwise wait for a release that never comes)."""
    async def main() -> None:
        slots = Slots(1)
        await slots.acquire()
        gone = asyncio.ensure_future(slots.acquire())
        await asyncio.sleep(0)
        gone.cancel()
        slots.release()
        async with asyncio.timeout(2):  # here, not in a task of its own: before it runs
            await slots.acquire()  # timed out before the fix
        assert gone.cancelled() and slots.held == 1 and slots.waiting == 0

    asyncio.run(main())
