"""serving — where a reply is generated: loading the (quantized) model, the engines that generate on a base and
each user's adapter (transformers, llama.cpp, vLLM behind one interface: engine.py), and the chat path (validate →
log → recall → reply → log) that the app and `chatbot ask` share.

May import: chatbot.privacy, chatbot.memory, chatbot.core."""
