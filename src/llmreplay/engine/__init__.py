"""One simulated inference engine: vLLM-v1-style scheduler, KV block pool with prefix caching, perf models."""
