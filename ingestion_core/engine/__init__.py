"""Stage 2 of a run, model -> dlt: source kinds (sources/) and destination kinds (destinations/),
registered by type; the run's plan (plan) and the hook points later stages plug into (hooks);
errors explained for users (errors).
"""
