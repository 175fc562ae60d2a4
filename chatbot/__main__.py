"""`python -m chatbot` (and `accelerate launch -m chatbot`) run the CLI."""
import sys

from chatbot.cli import main

sys.exit(main())
