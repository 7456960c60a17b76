"""Sources: the Sources list and one source's home: its test run and preview explorer, Run now and
cancel, and its config history. Uses :mod:`portal.dashboards` for the source's own runs (status
widgets, run details, cached run data); opens the editor through :mod:`portal.shared.navigation`."""
