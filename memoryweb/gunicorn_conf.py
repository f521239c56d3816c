"""gunicorn settings used by `manage.py serve`."""

import logging
import os
import threading

# Access log lines without query strings or referrers: a search query is user text, and no memory or
# message text may reach the logs.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss'


def post_worker_init(worker):
    # Each worker loads the embedding model as it starts, beside its first requests: pages and the
    # health checks answer at once (a worker started again after a crash too), and a chat that comes
    # before the model is ready waits for it. Imported here, in the worker: gunicorn reads this file
    # before Django is set up.
    from memoryweb.ai.embeddings import warm_up

    threading.Thread(target=warm_up, name="embedding warm-up", daemon=True).start()


def worker_exit(server, worker):
    # The worker has answered its last request and closed its sockets: leave now, without the
    # interpreter's teardown (seconds with torch loaded, on a busy machine), so that a stop is quick.
    logging.shutdown()
    os._exit(0)
