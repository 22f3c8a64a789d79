"""``llmreplay recommend``: the cheapest deployment that meets an SLA goal on recorded traffic.

``space`` (what may be deployed: the space file) → ``search`` (replay-backed search over it, through the sweep
executors) → ``answer`` (ranking, Pareto chart, the winner as a replayable config and Dynamo args).
"""

from llmreplay.recommend.search import Evaluation, SearchOutcome, recommend
from llmreplay.recommend.space import Deployment, SearchSpace, load_space

__all__ = ["Deployment", "Evaluation", "SearchOutcome", "SearchSpace", "load_space", "recommend"]
