"""A run waiting for a pool slot sleeps instead of spinning (a fix for the pinned Dagster 1.13.27).

A run whose next step waits for a ``gpu`` pool slot loops in ``inner_plan_execution_iterator``:
get the next step, none is ready, ``sleep_til_ready()``. The sleep comes from
``InstanceConcurrencyContext.interval_to_next_pending_claim_check``, which returns
``min([0, *time left per pending claim])``: never more than 0, so the run never sleeps and spins a
whole core, holding the GIL, until its slot frees (seen with py-spy: the waiting run of ``make demo``
took one of the two cores from the training that held the slot, and the CNN baselines took 2-3x
as long). The time left until the next claim check, never below 0, is what the loop needs.

The fix replaces that one method when this module is imported (by ``jobs.executors``, so in every
process that loads the code location: run workers, step processes, Celery workers).
``tests/test_pool_wait.py`` fails when a Dagster release changes the method, so the fix can be
dropped once upstream has one.
"""

from __future__ import annotations

import time

from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext

UPSTREAM = InstanceConcurrencyContext.interval_to_next_pending_claim_check


def interval_to_next_pending_claim_check(self: InstanceConcurrencyContext) -> float:
    """Seconds until the earliest pending claim may be retried (0 when one is due)."""
    if not self._pending_claims or not self._pending_timeouts:
        return 0.0
    return max(0.0, min(self._pending_timeouts.values()) - time.time())


InstanceConcurrencyContext.interval_to_next_pending_claim_check = interval_to_next_pending_claim_check
