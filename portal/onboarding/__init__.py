"""Onboarding: the new / edit source wizard (``wizard`` and its steps), the schedule picker, and
the form widgets built from the config models (``fields``, ``widgets``). Top feature layer: after a
save it hands the source to :mod:`portal.sources` for Test now / Run now."""
