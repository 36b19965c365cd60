# riskmon worker / sink / simulator image (docker-compose.yml builds it once for all three).
# Why slim + pip install .: the runtime needs only the Python package; Kafka, Redis and ClickHouse run in
# their own containers, so no JVM, redis-server or Tansu binary is needed here.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RISKMON_VAR_DIR=/var/lib/riskmon

WORKDIR /app
# Dependencies first (cached layer while only the code changes).
COPY pyproject.toml README.md* ./
COPY riskmon ./riskmon
COPY streams ./streams
COPY online_models ./online_models
COPY sinks ./sinks
COPY dashboards ./dashboards
COPY simulator ./simulator
# The compiled hot modules (riskmon accel build, ~10-15 % less CPU per message) need a C compiler only while
# they are built; it is removed again in the same layer.
RUN pip install . \
    && apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc libc6-dev \
    && riskmon accel build \
    && apt-get purge -y -qq gcc libc6-dev && apt-get autoremove -y -qq && rm -rf /var/lib/apt/lists/* \
    && riskmon accel status \
    && useradd --system --create-home --home-dir /var/lib/riskmon riskmon

USER riskmon
WORKDIR /var/lib/riskmon
ENTRYPOINT ["riskmon"]
CMD ["--help"]
