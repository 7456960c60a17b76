"""Sources: every source with its status and last run; new, edit, duplicate, enable / disable,
delete (to the bin) and restore."""

from portal.shared import components
from portal.sources import source_list

components.ensure_app_navigation()

source_list.render()
