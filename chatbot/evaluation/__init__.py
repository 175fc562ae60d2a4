"""evaluation — where a candidate is judged: probe suites (shipped in probe_suites/), acquisition questions, the
privacy canary, scoring, the probe runner, forgetting metrics, the promotion gate, and the history the dashboard
and `chatbot report` show.

May import: chatbot.learning, chatbot.serving, chatbot.privacy, chatbot.memory, chatbot.core."""
