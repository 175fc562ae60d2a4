"""`python -m chatbot` (and `accelerate launch -m chatbot`) run the CLI."""
import sys

from .cli import main

sys.exit(main())
