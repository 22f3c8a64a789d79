"""llmreplay: replay LLM request traces against simulated engines, with an SLA planner in the loop."""

__version__ = "0.1.0"
