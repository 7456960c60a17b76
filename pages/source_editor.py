"""New / edit source: the eight-step wizard and the YAML mode."""

from portal.onboarding import wizard
from portal.shared import components

components.ensure_app_navigation()

wizard.follow_links()
wizard.render(wizard.current_state())
