"""Protocol analyzers: each module one protocol's parser and its analyzer
(sensors.analyzer.Analyzer); sensors.protocols is the table that picks them."""
