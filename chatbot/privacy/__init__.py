"""privacy — who may see and what may be learned: accounts and logins, PII scrubbing of training data, checks of
path arguments, and forgetting (delete everywhere, name and withdraw the adapter versions trained on it).

May import: chatbot.memory, chatbot.core."""
