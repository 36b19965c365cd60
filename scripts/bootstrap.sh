# shellcheck shell=bash
# Shared set-up of scripts/demo and scripts/test (sourced, not run). Idempotent and quick when done:
# it only creates .venv, pip-installs when pyproject.toml changed, and installs system packages
# (redis-server; for tests also java + maven) when they are missing and we are root with apt-get.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
_APT_UPDATED=0

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

apt_install() {  # apt_install PKG... (only as root with apt-get; else explain and fail)
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    if [[ $_APT_UPDATED -eq 0 ]]; then
      say "apt-get update"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed"
      _APT_UPDATED=1
    fi
    say "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 \
      || die "apt-get install $* failed"
  else
    die "missing $*: install it (Debian/Ubuntu: sudo apt-get install -y $*; macOS: brew install ...)"
  fi
}

pick_python() {  # the first python 3.11/3.12 on PATH (pyproject: requires-python >=3.11,<3.13)
  local cand
  for cand in python3.11 python3.12 python3; do
    if command -v "$cand" >/dev/null &&
       "$cand" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 13) else 1)' 2>/dev/null; then
      command -v "$cand"; return 0
    fi
  done
  return 1
}

ensure_venv() {
  if [[ ! -x "$VENV/bin/python" ]]; then
    local py
    py="$(pick_python)" || { apt_install python3.11 python3.11-venv; py="$(pick_python)"; } \
      || die "need Python 3.11 or 3.12 (e.g. sudo apt-get install python3.11 python3.11-venv)"
    say "creating .venv with $py"
    "$py" -m venv "$VENV" 2>/dev/null || {
      apt_install "python3.$("$py" -c 'import sys; print(sys.version_info[1])')-venv"
      rm -rf "$VENV"; "$py" -m venv "$VENV" || die "python -m venv failed"
    }
  fi
  local want have=""
  want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
  [[ -f "$VENV/.riskmon-pyproject.sha256" ]] && have="$(cat "$VENV/.riskmon-pyproject.sha256")"
  if [[ "$want" != "$have" || ! -x "$VENV/bin/riskmon" ]]; then
    say "pip install -e '.[test]' (pyproject.toml changed or first run)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]' >&2 \
      || die "pip install failed"
    echo "$want" > "$VENV/.riskmon-pyproject.sha256"
  fi
}

ensure_redis() {
  command -v redis-server >/dev/null || [[ -x /usr/bin/redis-server ]] || apt_install redis-server
}

ensure_kafka_jars() {  # Java 17+, Maven, and the jars of infra/kafka/pom.xml in infra/kafka/lib
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  local pom_sha stamp="$ROOT/infra/kafka/lib/.pom.sha256"
  pom_sha="$(sha256sum infra/kafka/pom.xml | cut -d' ' -f1)"
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$pom_sha" ]]; then
    command -v mvn >/dev/null || apt_install maven
    say "fetching Apache Kafka jars with Maven (first run only)"
    "$VENV/bin/python" -c 'from riskmon.services.kafka import ensure_jars; ensure_jars()' \
      || die "could not fetch the Kafka jars"
  fi
}

ensure_chromium() {  # Debian's chromium, for the report test (headless screenshot)
  command -v chromium >/dev/null || [[ -x /usr/bin/chromium ]] || apt_install chromium
}

ensure_accel() {  # the compiled hot modules (riskmon.accel): built once per source change, else pure Python
  export RISKMON_REQUIRE_ACCEL=0
  if ! command -v cc >/dev/null && ! command -v gcc >/dev/null; then
    say "no C compiler (cc/gcc): running pure Python, ~10-15 % more CPU per message (apt-get install gcc)"
    return 0
  fi
  if "$VENV/bin/riskmon" accel build --if-needed; then
    export RISKMON_REQUIRE_ACCEL=1
  else
    say "compiled build failed (above): running pure Python"
  fi
}
