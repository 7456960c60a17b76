"""Where bytes live and how to reach them: local paths and object stores with their credentials
(object_stores), Unity Catalog volumes as fsspec (volumes) and the Databricks workspace client
(workspace). Used by sources, destinations and run records alike.
"""
