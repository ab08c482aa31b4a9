"""kube-scheduler's extender protocol (``wire``): the only module that knows its keys. Imports
no Kubernetes client."""
