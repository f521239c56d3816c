import pytest

from memoryweb.database import django_database


def test_it_reads_a_database_url_with_encoded_credentials():
    db = django_database("postgresql://u%40x:p%3Aw%2F@db.example:6543/my%20db?sslmode=require")
    assert (db["USER"], db["PASSWORD"], db["NAME"]) == ("u@x", "p:w/", "my db")
    assert (db["HOST"], db["PORT"]) == ("db.example", "6543")
    assert db["OPTIONS"] == {
        "sslmode": "require",
        "connect_timeout": "5",
        "prepare_threshold": 5,
        "server_side_binding": True,
    }


def test_statements_run_often_are_prepared_unless_the_url_says_otherwise():
    def threshold(query: str = ""):
        return django_database(f"postgresql://db/x{query}")["OPTIONS"]["prepare_threshold"]

    assert threshold() == 5
    assert threshold("?prepare_threshold=0") == 0
    assert threshold("?prepare_threshold=off") is None
    assert threshold("?prepare_threshold=None") is None
    for junk in ("often", "-1"):
        with pytest.raises(ValueError, match="prepare_threshold"):
            threshold(f"?prepare_threshold={junk}")


def test_a_connection_gives_up_on_a_server_that_does_not_answer():
    assert django_database("postgresql://db.example/x")["OPTIONS"]["connect_timeout"] == "5"
    given = django_database("postgresql://db.example/x?connect_timeout=30")
    assert given["OPTIONS"]["connect_timeout"] == "30"


def test_it_reads_a_socket_directory_host():
    db = django_database("postgresql://postgres:@/memoryweb?host=/tmp/pg")
    assert db["HOST"] == "/tmp/pg" and db["NAME"] == "memoryweb"


def test_it_refuses_a_non_postgres_url():
    with pytest.raises(ValueError, match="PostgreSQL"):
        django_database("mysql://x@y/z")
