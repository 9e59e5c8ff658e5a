"""Schema version of the contract. MAJOR.MINOR: minor is additive, major needs migration."""

SCHEMA_VERSION = "1.1"
SCHEMA_MAJOR = int(SCHEMA_VERSION.split(".")[0])
