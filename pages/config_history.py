"""Config history: who changed a source, when and what, with diffs and restore."""

from portal.shared import components
from portal.sources import config_history_view

components.ensure_app_navigation()
config_history_view.render()
