"""Stage-free helpers every layer may use: where things live (settings), atomic writes and file locks,
the custom_sql guard, cooperative cancellation and the one-thread preload of heavy modules.
Imports nothing else of the project.
"""
