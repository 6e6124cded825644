"""The search on a Dask distributed cluster on 127.0.0.1, through the search_executor resource."""

from __future__ import annotations

import pytest

from bio_assets.core.search.evolution import EvolutionParams, run_search
from resources.search_executor import SearchExecutorResource
from tests.search_fakes import cell_space, jittery_fitness
from tests.test_search import search

distributed = pytest.importorskip("distributed")


def test_search_on_a_local_dask_cluster_matches_the_local_history():
    params = EvolutionParams(population_size=6, cycles=10, sample_size=3, seed=21)
    with distributed.LocalCluster(
        host="127.0.0.1", n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        resource = SearchExecutorResource(kind="dask", dask_address=cluster.scheduler_address, workers=2)
        with resource.open() as plan:
            remote = run_search(cell_space(), jittery_fitness, params, plan.executor, workers=plan.workers)
    local = search(params, jittery_fitness, workers=2)
    assert len(remote.history) == 16
    assert [(e.code, e.fitness) for e in remote.history] == [(e.code, e.fitness) for e in local.history]


def test_dask_without_an_address_is_refused():
    with pytest.raises(ValueError, match="needs dask_address"):
        with SearchExecutorResource(kind="dask").open():
            pass
