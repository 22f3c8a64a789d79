"""The SLA planner in the loop: observes FPMs and traffic, predicts load, scales workers (Dynamo's design)."""
