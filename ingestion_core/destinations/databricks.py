"""Databricks Unity Catalog through dlt's databricks destination, staged on ADLS / S3 or a
Unity Catalog volume. Credentials by reference (PAT or OAuth M2M)."""

from __future__ import annotations

from typing import Any

from ingestion_core.destinations import DestinationPlan, register_destination
from ingestion_core.secrets import resolve_value
from ingestion_core.sources.files import file_credentials


@register_destination("databricks")
def build(name: str, config: Any) -> DestinationPlan:
    import dlt

    values = resolve_value(config.model_dump(exclude_none=True, include={
        "server_hostname", "http_path", "catalog", "access_token", "client_id", "client_secret"}))
    staging = None
    kwargs: dict[str, Any] = {}
    if config.staging and config.staging.bucket_url:
        staging = dlt.destinations.filesystem(
            bucket_url=config.staging.bucket_url, credentials=file_credentials(config.staging.credentials),
        )
    elif config.staging and config.staging.volume:
        kwargs["staging_volume_name"] = config.staging.volume
    destination = dlt.destinations.databricks(credentials=values, destination_name=name, **kwargs)
    return DestinationPlan(
        name=name, type="databricks", destination=destination, staging=staging,
        location=f"{config.server_hostname}/{config.catalog}",
    )
