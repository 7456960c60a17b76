"""Parquet / JSONL files or Delta tables on local disk, ADLS, S3 or GCS (date-partitioned
layout by default). dlt merges into files only with the Delta table format (upsert)."""

from __future__ import annotations

from typing import Any

from ingestion_core.destinations import DestinationPlan, register_destination
from ingestion_core.sources.files import bucket_url, file_credentials


@register_destination("filesystem")
def build(name: str, config: Any) -> DestinationPlan:
    import dlt

    url = bucket_url(config.bucket_url)
    delta = config.format == "delta"
    credentials = file_credentials(config.credentials)
    destination = dlt.destinations.filesystem(
        bucket_url=url, layout=config.layout, destination_name=name,
        **({"credentials": credentials} if credentials is not None else {}),
    )
    return DestinationPlan(
        name=name, type="filesystem", destination=destination,
        loader_file_format="parquet" if delta else config.format,
        table_format="delta" if delta else None, merge_strategy="upsert",
        serial_load=delta, location=url,
    )
