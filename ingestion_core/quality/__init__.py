"""Stage 3 of a run, after each table's load: quality checks on the destination (checks, over the
landed table of target), reconciliation with the source (reconcile) and schema-change events
(schema_changes). Registered with ``ingestion_core.engine.hooks``; the runner imports this
package so the hooks are there before the first table.
"""
