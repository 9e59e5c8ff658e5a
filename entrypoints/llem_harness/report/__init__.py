"""Turn what the phases measured (a :class:`RunContext`) into the result's metric groups."""
