"""Entities (the constituency), controls, self-assessments, certificates, progress."""
