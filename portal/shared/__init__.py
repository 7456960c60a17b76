"""Shared by every page and feature: Markdown-safe text (``markdown``), who is acting
(``identity``), cached reads of the config dir (``data``), requests from one page to another
(``navigation``) and rendering helpers (``components``). Imports no other portal package."""
