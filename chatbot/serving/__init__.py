"""serving — where a reply is generated: loading the (quantized) model, streaming generation on the served
adapter, and the chat path (validate → log → recall → reply → log) that the app and `chatbot ask` share.

May import: chatbot.privacy, chatbot.memory, chatbot.core."""
