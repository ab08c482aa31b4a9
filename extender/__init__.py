"""The load-aware scheduler extender: an HTTP service kube-scheduler calls to filter, score,
bind and preempt.

Where things are, top layer first (each imports only the layers below it; the contracts are in
pyproject.toml's ``[tool.importlinter]``):

* entry points: ``cli`` (``python -m extender serve|check-policy``), ``wsgi`` and
  ``gunicorn_conf`` (what gunicorn loads);
* ``server``: where a request enters, the WSGI app and the gunicorn worker class;
* ``cache``: the cluster cache (``nodeCacheCapable: true``), where node data comes from in
  that mode: informers, the store, its snapshots, its process and the shipping between;
* ``settings``, ``policy_file``, ``metrics``: configuration and the service's metrics;
* ``verbs``: filter, prioritize, bind and preempt as functions of request bytes, where a
  score is made (by ``scoring``), and the node source of stateless mode; no I/O;
* ``load``: live load from node annotations, metrics-server and Prometheus, in windows;
* ``protocol``: kube-scheduler's extender protocol, bytes in and out;
* ``kube``: Kubernetes objects, quantities, pod accounting, timestamps and the API client.
"""
