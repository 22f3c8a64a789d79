"""Dynamo 1.6.1's SLA planner, rule for rule (``planner_config.policy: dynamo``)."""
