"""External reports in: Shadowserver, abuse.ch, phishing lists and generic CSV, turned
into findings attributed to entities, grouped into incidents and notified."""
