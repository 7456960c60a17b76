"""How column types travel from a SQL source to the destination: the vocabulary (columns), the
planner (fidelity), the rules per dialect (rules), the type adapters and the Databricks type rules,
and one name per landed type (names). Below config: the models validate ``column_types`` and
``type_mapping`` with it.
"""
