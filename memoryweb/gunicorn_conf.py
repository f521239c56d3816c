"""gunicorn settings used by `manage.py serve`."""

# Access log lines without query strings or referrers: a search query is user text, and no memory or
# message text may reach the logs.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss'


def post_worker_init(worker):
    # Each worker loads the embedding model before it takes requests: no slow first chat. Imported
    # here, in the worker: gunicorn reads this file before Django is set up.
    from memoryweb.ai.embeddings import warm_up

    warm_up()
