"""gunicorn settings used by `manage.py serve`."""


def post_worker_init(worker):
    # Each worker loads the embedding model before it takes requests: no slow first chat.
    from memoryweb.ai.embeddings import warm_up

    warm_up()
