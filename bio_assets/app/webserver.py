"""A small client of the Dagster webserver's GraphQL API: the calls the UI makes to launch,
follow and cancel an asset backfill and to terminate runs."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence

import dagster as dg

LAUNCH_BACKFILL = """
mutation LaunchBackfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
    ... on PartitionSetNotFoundError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { stepKey invalidOutputName }
    ... on RunConflict { message }
    ... on ConflictingExecutionParamsError { message }
    ... on NoModeProvidedError { message }
    ... on InvalidSubsetError { message }
  }
}
"""
BACKFILL_STATUS = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { id status }
    ... on PythonError { message }
    ... on BackfillNotFoundError { message }
  }
}
"""
CANCEL_BACKFILL = """
mutation Cancel($id: String!) {
  cancelPartitionBackfill(backfillId: $id) {
    __typename
    ... on PythonError { message }
    ... on UnauthorizedError { message }
  }
}
"""
TERMINATE_RUNS = """
mutation Terminate($ids: [String!]!) {
  terminateRuns(runIds: $ids, terminatePolicy: SAFE_TERMINATE) { __typename }
}
"""
# Backfill states after which nothing more is launched.
FINISHED_BACKFILL_STATES = ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED")


class WebserverError(RuntimeError):
    pass


class DagsterWebserver:
    """GraphQL calls against a running ``dagster-webserver`` (``url`` like http://127.0.0.1:3000)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def ready(self) -> bool:
        try:
            return "version" in self.query("query { version }")
        except (OSError, WebserverError):
            return False

    def query(self, text: str, variables: Mapping | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": text, "variables": dict(variables or {})}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            body = json.loads(response.read())
        if body.get("errors"):
            raise WebserverError("; ".join(e.get("message", str(e)) for e in body["errors"]))
        return body["data"]

    def launch_backfill(
        self,
        keys: Sequence[dg.AssetKey],
        *,
        partitions: Sequence[str] | None,
        tags: Mapping[str, str],
        title: str,
    ) -> str:
        """Launch an asset backfill of ``keys`` as the UI's "Materialize" does: the selected
        ``partitions`` of the partitioned roots and everything downstream; ``None``: all partitions."""
        params: dict = {
            "assetSelection": [{"path": list(k.path)} for k in keys],
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
            "title": title,
        }
        if partitions is None:
            params["allPartitions"] = True
        else:
            params["partitionNames"] = list(partitions)
        result = self.query(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise WebserverError(f"backfill not launched ({result['__typename']}): {result}")
        return result["backfillId"]

    def backfill_status(self, backfill_id: str) -> str:
        result = self.query(BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        if result["__typename"] != "PartitionBackfill":
            raise WebserverError(f"backfill {backfill_id}: {result}")
        return result["status"]

    def cancel_backfill(self, backfill_id: str) -> None:
        result = self.query(CANCEL_BACKFILL, {"id": backfill_id})["cancelPartitionBackfill"]
        if result["__typename"] != "CancelBackfillSuccess":
            raise WebserverError(f"backfill {backfill_id} not canceled: {result}")

    def terminate_runs(self, run_ids: Sequence[str]) -> None:
        if run_ids:
            self.query(TERMINATE_RUNS, {"ids": list(run_ids)})
