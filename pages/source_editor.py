"""New / edit source: the eight-step wizard and the YAML mode."""

from portal import components, wizard

components.ensure_app_navigation()

wizard.follow_links()
wizard.render(wizard.current_state())
