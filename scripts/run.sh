#!/usr/bin/env bash
# Set up (first time only) and start the chat app on the embedded model: http://127.0.0.1:7860
# Extra arguments go to `chatbot serve` (e.g. --port 8080). Data lives in $CHATBOT_HOME (default
# ~/.local/share/chatbot).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/chatbot serve "$@"
