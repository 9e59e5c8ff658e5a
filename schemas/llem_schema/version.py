"""Schema version of the contract. MAJOR.MINOR: minor is additive, major needs migration."""

SCHEMA_VERSION = "1.2"
SCHEMA_MAJOR = int(SCHEMA_VERSION.split(".")[0])
#: what a schema_version of this major looks like (the JSON Schema files carry it)
VERSION_PATTERN = rf"^{SCHEMA_MAJOR}\.[0-9]+$"
