"""llem_harness: the in-container side of llem. Loads a model, measures, writes result.json.

Runs inside the backend image (or in the current environment with ``--runtime local``). It
reads only ``RUN_DIR/experiment.json`` and writes only into ``RUN_DIR``; it never talks to
the host otherwise and never imports docker.
"""

__version__ = "0.1.0"
