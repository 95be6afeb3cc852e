"""Detection content: indicators (MISP, feeds, Zeek intel, CSV...) and YARA packs."""
