"""learning — where training data is built and the weights change: fact extraction and Q/A construction
(augment), the training mix (new + replay + rehearsal), replay policies, rehearsal, QLoRA training with optional
EWC, and the consolidation job that runs them (with its background start, nightly schedule and retrain).

May import: chatbot.serving, chatbot.privacy, chatbot.memory, chatbot.core. The gate that judges a candidate
is handed to consolidate() by its callers, so learning never imports evaluation."""
