"""Which container image runs an experiment, and making sure it is here.

Images are ``<registry>/<namespace>/<backend>:<llem version>-cuda<major>`` (``-cpu`` for the
CPU variant), one per row of ``images/matrix.yaml``, whose ``registry:`` (where CI pushes) is
the default registry. The host picks the image of the newest CUDA (major.minor, where the
matrix names the minor) that does not exceed its driver's, because a CUDA runtime newer than
the driver fails at the first kernel launch with an error that names neither. An explicit
``--image`` wins; a lock file (``llem.lock``) pins each backend to a digest so a study re-runs
on exactly the same bytes.

Nothing here imports pynvml or torch at import time (the host install has neither); NVML is
imported inside :func:`detect_driver_cuda` only.
"""

