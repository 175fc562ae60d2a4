"""learning — where training data is built and the weights change: fact extraction (extract: rules from augment,
or a model under constrained decoding) into the knowledge ledger with corrections (ledger), Q/A construction
(augment), the training mix (rebuild: every current fact + rehearsal; continue: new + replay + rehearsal), replay
policies, rehearsal, QLoRA training with optional EWC and distillation to the base, and the consolidation job that
runs them (with its background start, nightly schedule and retrain).

May import: chatbot.serving, chatbot.privacy, chatbot.memory, chatbot.core. The gate that judges a candidate
is handed to consolidate() by its callers, so learning never imports evaluation."""
