# One image for the room's workloads on EKS (infra/README.md, "The room on EKS"): the broker
# (`python -m dataroom.broker`), the review service (`python -m dataroom.review`), the registry
# migration (`dataroom db upgrade`) and every user's single-user server (`jupyterhub-singleuser`,
# started by KubeSpawner). Not built by the tests; push it to the data-room account's ECR and set
# its URI (tag or digest) as `dataroom:room.image` in the stack config.
#
#   docker build -t <account>.dkr.ecr.<region>.amazonaws.com/dataroom:0.1.0 .
#   docker push <account>.dkr.ecr.<region>.amazonaws.com/dataroom:0.1.0

FROM python:3.11.14-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY dataroom ./dataroom
COPY infra ./infra
COPY policies ./policies
RUN python -m venv /opt/dataroom \
 && /opt/dataroom/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/dataroom/bin/pip install --no-cache-dir .

FROM python:3.11.14-slim-bookworm
# No compilers, no package manager caches, no shell tools beyond the base image's.
COPY --from=build /opt/dataroom /opt/dataroom
# dataroom.rego reads policies/ beside the installed package (POLICY_ROOT), as in a checkout.
COPY policies /opt/dataroom/lib/python3.11/site-packages/policies
# The services run as 10001 (infra/room_services.py), single-user servers as 1000:100 (KubeSpawner uid/gid).
RUN groupadd --gid 10001 dataroom && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin dataroom \
 && useradd --uid 1000 --gid 100 --create-home --shell /bin/bash jovyan \
 && mkdir -p /var/lib/dataroom && chown 10001:10001 /var/lib/dataroom
ENV PATH=/opt/dataroom/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DATAROOM_HOME=/var/lib/dataroom
USER 1000:100
WORKDIR /home/jovyan
EXPOSE 8765 8766 8888
CMD ["jupyterhub-singleuser"]
