"""The seed's bulk load (issue 17): the secondary indexes of api.offers are dropped before loading many offers
and built again after, from their own definitions, so the database is left exactly as migrated."""


import psycopg
import pytest

from referral_service import config, seed
from referral_service.migrate import migrate
from tests.support import throwaway_cluster

INDEXES = ("select c.relname, pg_get_indexdef(i.indexrelid), obj_description(i.indexrelid, 'pg_class'), i.indisvalid"
           " from pg_index i"
           " join pg_class c on c.oid = i.indexrelid where i.indrelid = 'api.offers'::regclass order by 1")


@pytest.fixture(scope="module")
def seeded_url() -> str:
    """Superuser URL of a freshly migrated database on a cluster of its own (the seed commits its rows)."""
    with throwaway_cluster("test-seed") as cluster:
        url = cluster.url(config.DB_NAME)
        migrate(url, log=lambda _line: None)
        yield url


def indexes(url):
    with psycopg.connect(url) as conn:
        return conn.execute(INDEXES).fetchall()


def test_bulk_load_rebuilds_the_same_indexes(seeded_url, monkeypatch):
    migrated = indexes(seeded_url)
    assert any(name == "idx_offers_search_rum" for name, *_ in migrated)
    assert any(comment for _, _, comment, _ in migrated)  # migration 033 comments its indexes
    monkeypatch.setattr(seed, "BULK_OFFERS", 100)
    dropped = []
    real_drop = seed._drop_secondary_indexes
    monkeypatch.setattr(seed, "_drop_secondary_indexes", lambda url: dropped.extend(real_drop(url)) or dropped)
    stats = seed.seed(seeded_url, offers=500, events=100)
    assert stats["offers"] == 500
    # the RUM index and the other secondary ones were dropped; the primary key (a constraint) stayed
    names = {name for name, *_ in dropped}
    assert {"idx_offers_search_rum", "idx_offers_search_rum_all", "idx_offers_metadata"} <= names
    assert "offers_pkey" not in names
    assert indexes(seeded_url) == migrated  # same names, definitions, comments, all valid
    with psycopg.connect(seeded_url) as conn:
        conn.execute("set enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.execute(
            "explain select id from api.offers where search_vector @@ to_tsquery('english', 'checking') "
            "order by search_vector <=> to_tsquery('english', 'checking') limit 5"))
        assert "idx_offers_search_rum" in plan, plan

    # a small addition to many offers keeps the indexes up row by row: nothing dropped
    dropped.clear()
    seed.seed(seeded_url, offers=150, events=0)
    assert dropped == [] and indexes(seeded_url) == migrated


def test_a_failed_load_still_builds_the_indexes(seeded_url, monkeypatch):
    migrated = indexes(seeded_url)
    with psycopg.connect(seeded_url) as conn:
        before = conn.execute("select count(*) from api.offers").fetchone()[0]
    monkeypatch.setattr(seed, "BULK_OFFERS", 10)
    monkeypatch.setattr(seed, "OFFERS_SQL", "select no_such_column from api.offers where $1::int > 0")
    with pytest.raises(psycopg.errors.UndefinedColumn):
        seed.seed(seeded_url, offers=max(before, 10), events=0)
    assert indexes(seeded_url) == migrated
