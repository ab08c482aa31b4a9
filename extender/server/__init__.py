"""The HTTP edge: where a request enters (``app``, the WSGI app) and the gunicorn worker that
serves it (``worker``)."""
