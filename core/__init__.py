"""Plumbing shared by every server-side package: settings, database, audit, tokens, ids.

Imports none of the packages above it (see the import-linter contracts).
"""
