"""A continual chatbot."""
