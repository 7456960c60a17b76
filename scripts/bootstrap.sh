#!/usr/bin/env bash
# Sets up everything the portal or the test suite needs on a fresh machine. Idempotent.
#   scripts/bootstrap.sh          venv + the portal's Python packages (requirements.txt: `make run`)
#   scripts/bootstrap.sh --test   also the test tools (requirements-dev.txt) and the Debian packages the
#                                 tests start (PostgreSQL, MariaDB, Chromium, ...): `make test`
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${INGEST_VENV:-.venv}
PY=${PYTHON:-python3}
APT_PACKAGES=(postgresql mariadb-server unixodbc chromium)

if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating $VENV"
  "$PY" -m venv "$VENV"
fi

# Install one requirements set into the venv, only when it (or pyproject.toml) changed since the
# last install: `make run` installs the portal's packages only, `make test` adds the test tools.
install() {  # install <stamp name> <requirements file>...
  local stamp="$VENV/.$1.sha256" want log
  shift
  want=$(cat "$@" pyproject.toml | sha256sum | cut -d' ' -f1)
  [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && return 0
  echo "bootstrap: installing $* into $VENV"
  log="$VENV/pip-install.log"
  local args=()
  for f in "$@"; do args+=(-r "$f"); done
  if ! { "$VENV/bin/pip" install --disable-pip-version-check "${args[@]}" &&
         "$VENV/bin/pip" install --disable-pip-version-check --no-deps -e . ; } >"$log" 2>&1; then
    grep -v "^WARNING: Location" "$log" | tail -30 >&2
    echo "bootstrap: pip install failed (full log: $log)" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
}

install requirements requirements.txt

if [ "${1:-}" = "--test" ]; then
  install requirements-dev requirements.txt requirements-dev.txt
  # Azurite (Azure Blob emulator) for tests/integration/test_object_stores.py, pinned by tests/node/package-lock.json
  if command -v npm >/dev/null 2>&1; then
    node_stamp=tests/node/node_modules/.lock.sha256
    node_want=$(sha256sum tests/node/package-lock.json | cut -d' ' -f1)
    if [ "$(cat "$node_stamp" 2>/dev/null)" != "$node_want" ]; then
      echo "bootstrap: npm ci --prefix tests/node (azurite)"
      npm ci --prefix tests/node --no-audit --no-fund --loglevel=error
      echo "$node_want" > "$node_stamp"
    fi
  else
    echo "bootstrap: npm not found; Azure object-store tests will skip (or fail when INGEST_REQUIRE_SERVICES=1)" >&2
  fi
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      echo "bootstrap: apt-get install ${missing[*]}"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      echo "bootstrap: not root, cannot install ${missing[*]}; tests that need them will skip" \
           "(or fail when INGEST_REQUIRE_SERVICES=1)" >&2
    fi
  fi
fi

# The package's bytecode, written once here: with PYTHONDONTWRITEBYTECODE set (as on the project's
# machines) Python never writes it, and every `ingest` process compiled the ~60 modules it
# imports again (0.09 s CPU of an `ingest preview`). A module edited since is compiled again in
# memory as before; the next bootstrap (`make run`, `make test`) writes it. ~0.03 s when up to date.
"$VENV/bin/python" -m compileall -q ingestion_core >/dev/null
