"""The four verbs as functions of request bytes (``verbs``), where a score is made: decode,
the node source (``source``), the pod's demand, ``scoring``, encode. The decisions log and the
request pods kept for the bind live here too, and the policy a call is answered under
(``policy``: taken once per call). No I/O: the app passes the node source and the
binder in."""
