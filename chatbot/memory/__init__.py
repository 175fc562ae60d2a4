"""memory — where a turn is stored and recalled: SQLite conversations and turns (the truth), the knowledge ledger
derived from them (facts), which of them the served version holds (served), FAISS vectors of them (the buffer),
the sentence embedder, retrieval of a user's relevant past turns for the prompt, and JSONL import/export.

May import: chatbot.core."""
