"""The memory benchmark: LoCoMo conversations ingested through the product's pipeline, questions
answered by the chat's context builder, and the evidence turns' recall@k compared with BM25, dense
and RRF baselines.

Run it with `python manage.py evaluate_memory` (see bench/README.md). Not a test: it measures.
"""
