"""A source's home (``?source=NAME``): Status (test run, run now, live progress), Runs, Schema
(what landed, the preview explorer), Settings (YAML, edit, duplicate, enable, delete, incremental
state) and History (every save). Every row of the Sources list leads here."""

from portal.shared import components
from portal.sources import source_home, test_run

components.ensure_app_navigation()

name = test_run.pick_source()
if name:
    source_home.render(name)
