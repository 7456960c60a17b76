"""Stage 4, the run itself: the runner (preview_source / run_source: one dlt pipeline per table),
the source lock and audit (locks), run control (background runs, cancel, incremental state),
many sources at once (run_all), the local scheduler and the preview explorer.
"""
