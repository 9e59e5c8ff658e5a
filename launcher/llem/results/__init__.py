"""Results on the host: reading, the metric registry, statistics, comparison, export, plots."""
