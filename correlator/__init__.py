"""The correlation engine: indicator index, YARA scanning, alerts and their stores."""
