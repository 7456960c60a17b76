"""Stage 1 of a run, YAML -> validated model: the Pydantic models (models/), secret references and
their providers (secrets, secret_providers/), the YAML text (yaml_text), the store with revisions
and audit (store), who may do what (access), validation messages, migrations, dependencies
between sources, the JSON Schema, and the Excel framework's import (excel/).
"""
