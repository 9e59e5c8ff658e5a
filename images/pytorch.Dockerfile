# llenergymeasure harness image for the 'pytorch' backend.
# Build context: this file + wheelhouse/ (wheels of llenergymeasure and its [pytorch] deps that the
# base image lacks). The install is offline (--no-index): what ran in CI is what is in the wheel
# set, and a build on an air-gapped host works. Base images and CUDA majors: images/matrix.yaml.
ARG BASE_IMAGE=pytorch/pytorch:2.9.0-cuda12.8-cudnn9-runtime

FROM ${BASE_IMAGE} AS install
USER root
COPY wheelhouse/ /tmp/wheelhouse/
# A venv that still sees the base's site-packages: the base's torch/pytorch/CUDA libs are reused,
# and PEP 668 "externally managed" system Pythons (Debian, Ubuntu) are left untouched.
RUN python3 -m venv --system-site-packages /opt/llem \
 && /opt/llem/bin/python -m pip install --no-cache-dir --no-index --find-links /tmp/wheelhouse \
      "llenergymeasure[pytorch]" \
 && /opt/llem/bin/python -c "import llem_harness, llem_schema"

FROM ${BASE_IMAGE}
# An ARG declared before the first FROM is out of scope after it: declared again (without a
# default, so it keeps the value given to the build) for the base-image label below.
ARG BASE_IMAGE
ARG ENGINE_VERSION=unknown
ARG LLEM_VERSION=0.0.0
ARG VCS_REF=unknown
ARG CUDA=unknown
ARG SOURCE=https://github.com/llenergymeasure/llenergymeasure
LABEL org.opencontainers.image.title="llenergymeasure-pytorch" \
      org.opencontainers.image.description="llenergymeasure harness, pytorch backend" \
      org.opencontainers.image.version="${LLEM_VERSION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      io.llenergymeasure.backend="pytorch" \
      io.llenergymeasure.engine.version="${ENGINE_VERSION}" \
      io.llenergymeasure.cuda="${CUDA}"
USER root
COPY --from=install /opt/llem /opt/llem
# Non-root default user; the launcher also runs it as --user <host uid>:<gid> so files in the
# run directory belong to whoever started llem. HOME=/tmp keeps caches writable for any uid.
RUN (useradd --uid 1000 --create-home --shell /bin/sh llem 2>/dev/null \
     || echo "llem:x:1000:1000::/home/llem:/bin/sh" >> /etc/passwd) \
 && mkdir -p /llem/run && chmod 1777 /llem /llem/run
ENV PATH=/opt/llem/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    LLEM_IN_CONTAINER=1
USER 1000
WORKDIR /llem/run
ENTRYPOINT ["python", "-m", "llem_harness"]
CMD ["/llem/run"]
