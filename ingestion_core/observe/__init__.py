"""What runs leave behind and what operations read: run records (records), run logs (run_log),
the dashboards' figures (run_metrics), scheduler status, schema drift, alerts and the daily
summary. Below the engine, which writes records and logs as it runs.
"""
