"""The cluster cache (``nodeCacheCapable: true``): node data from the API server's watches.

``informer`` lists and watches Nodes and Pods into ``store`` (``ClusterState``), which publishes
immutable snapshots (``snapshot``); ``feed`` owns the store and every thread that feeds it, in the worker
or in the child process of ``process`` (which ships snapshots through ``shipping``);
``node_source`` answers the verbs from the current snapshot and records binds; ``gate`` makes
the feeders step aside while a call is answered; ``config`` is the settings of all of them.
"""
