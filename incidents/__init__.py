"""Alerts to incidents: triage states, lifecycle, taxonomy, TLP/PAP, SLAs, exports."""
