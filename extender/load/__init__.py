"""Live load for the cluster cache: per-node windows of usage samples (``window``) fed by node
annotations, ``metrics_server`` and ``prometheus`` through one poller base (``poller``);
``sources`` names them."""
