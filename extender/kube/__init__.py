"""Kubernetes: the objects as the extender reads them (``objects``), quantities (``quantity``),
what a pod asks for (``demand``), RFC 3339 times (``timestamps``), what a bind asks and how it
ended (``bind``), the API client (``client``) and the binder that uses it (``binding``)."""
