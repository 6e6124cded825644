"""A run waiting for a pool slot sleeps until its next claim check (jobs/pool_wait.py), where the
pinned Dagster release would return 0 and spin a core; the test fails when Dagster changes the
method it replaces."""

from __future__ import annotations

import inspect
import time

import dagster as dg
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext

import jobs.executors  # noqa: F401  (installs the fix, as the code location does)
from jobs import pool_wait


def context_waiting(instance: dg.DagsterInstance, seconds_left: float) -> InstanceConcurrencyContext:
    run = instance.create_run_for_job(dg.GraphDefinition("g").to_job())
    context = InstanceConcurrencyContext(instance, run)
    context._pending_claims.add("train")
    context._pending_timeouts["train"] = time.time() + seconds_left
    return context


def test_a_waiting_run_sleeps_until_its_next_claim_check_where_upstream_would_spin():
    with dg.instance_for_test() as instance:
        waiting = context_waiting(instance, 4.0)
        assert 3.0 < waiting.interval_to_next_pending_claim_check() <= 4.0
        assert pool_wait.UPSTREAM(waiting) == 0  # the pinned release: no sleep at all
        assert context_waiting(instance, -1.0).interval_to_next_pending_claim_check() == 0.0  # due now
    assert (
        InstanceConcurrencyContext.interval_to_next_pending_claim_check
        is pool_wait.interval_to_next_pending_claim_check
    )


def test_the_replaced_method_is_still_the_one_with_the_bug():
    source = inspect.getsource(pool_wait.UPSTREAM)
    assert "min([0, *[ready_at - now" in source, (
        "Dagster changed the method: check whether jobs/pool_wait.py is still needed"
    )
