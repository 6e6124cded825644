"""An asset materialized on a Dagster instance stored in the real PostgreSQL at 127.0.0.1:5432."""

from __future__ import annotations

import dagster as dg

from bio_assets.core.registry import DatasetEntry, save_registry
from bio_assets.definitions import build_definitions
from resources.image_dataset import ImageDatasetResource
from resources.io_manager import AssetFileIOManager


def test_materialization_is_stored_in_postgres(postgres_database, tmp_path, tiny_dataset):
    entries = [DatasetEntry("tiny", str(tiny_dataset))]
    save_registry(tmp_path / "r.yaml", entries)
    resources = {
        "image_dataset": ImageDatasetResource(registry_file=str(tmp_path / "r.yaml")),
        "io_manager": AssetFileIOManager(root=str(tmp_path / "storage")),
    }
    defs = build_definitions(entries, resources)
    overrides = {"storage": {"postgres": {"postgres_url": postgres_database}}}
    key = dg.AssetKey(["tiny", "raw_images"])
    with dg.instance_for_test(overrides=overrides) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        instance.add_dynamic_partitions("tiny__classes", ["Parabasal", "Dyskeratotic"])
        result = defs.resolve_job_def("tiny__paper_pipeline").execute_in_process(
            instance=instance, partition_key="Dyskeratotic", asset_selection=[key]
        )
        assert result.success
        run_id = result.run_id
    # A new connection sees what the first one wrote: the run, its partition and the metadata.
    with dg.instance_for_test(overrides=overrides) as instance:
        assert instance.get_run_by_id(run_id).is_success
        assert instance.get_materialized_partitions(key) == {"Dyskeratotic"}
        assert set(instance.get_dynamic_partitions("tiny__classes")) == {"Parabasal", "Dyskeratotic"}
        record = instance.fetch_materializations(key, limit=1).records[0]
        assert record.asset_materialization.metadata["num_images"].value == 8
    import psycopg2

    with psycopg2.connect(postgres_database) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
            (run_id,),
        )
        assert cursor.fetchone()[0] == 1
