"""Workers (engine replicas with a lifecycle), routers, and the topologies that hold them."""
