"""Adapters that put Signoff in front of the tools of agent frameworks; each module needs its framework's extra.

- `signoff.integrations.openai_agents`: the OpenAI Agents SDK (`pip install 'signoff[openai-agents]'`).
- `signoff.integrations.langgraph`: LangChain agents and LangGraph graphs (`pip install 'signoff[langgraph]'`).
"""
