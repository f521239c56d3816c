"""The API's pagination (its own module: DRF imports it while rest_framework.generics is still
loading)."""

from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    """`?page=N&page_size=M` (at most 200): {"count", "next", "previous", "results"}. A page past
    the end is 404."""

    page_size_query_param = "page_size"
    max_page_size = 200
