#!/usr/bin/env bash
# Set up (first time only, including headless Chromium for browser tests), lint, and run the whole test suite.
# Extra arguments go to pytest (e.g. -k chat, -m "not integration").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
.venv/bin/ruff check chatbot tests scripts  # the linter runs with the tests (config: pyproject.toml)
exec .venv/bin/python -m pytest -q -p no:cacheprovider --timeout 1200 "$@"
