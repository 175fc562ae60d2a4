"""core — the leaf values and helpers every layer shares: the typed Config, where files live (Paths), the adapter
version registry, the consolidation lock and run log, atomic file writes.

May import: nothing else of chatbot (only the standard library and small dependencies such as filelock)."""
