"""Signup answers alike for new and existing emails (issue 10, item 11), and never touches an existing account."""

import time

import psycopg
import pytest

from tests.conftest import act_as

PASSWORD = "correct horse 42"


@pytest.fixture
def dora(db):
    return db.execute("select internal.create_user('dora@example.com', %s)", [PASSWORD]).fetchone()[0]


def signup(db, email, password):
    act_as(db, "anonymous")
    started = time.perf_counter()
    result = db.execute("select api.signup(%s, %s)", [email, password]).fetchone()[0]
    elapsed = time.perf_counter() - started
    db.execute("reset role")
    return result, elapsed


def test_existing_and_new_emails_get_the_same_answer(db, dora):
    assert signup(db, "Dora@Example.com", "another pass 1")[0] == ""  # void
    assert signup(db, "dora.new@example.com", "another pass 1")[0] == ""


def test_existing_account_is_unchanged_and_not_doubled(db, dora):
    before = db.execute("select id, email, password, role, updated_at from internal.users where id = %s",
                        [dora]).fetchone()
    for spelling in ("dora@example.com", "DORA@Example.COM"):
        signup(db, spelling, "a different pass 9")
    assert db.execute("select count(*) from internal.users where lower(email) = 'dora@example.com'").fetchone()[0] == 1
    after = db.execute("select id, email, password, role, updated_at from internal.users where id = %s",
                       [dora]).fetchone()
    assert after == before
    # the old password still works, the one sent to signup does not
    assert db.execute("select password = crypt(%s, password) from internal.users where id = %s",
                      [PASSWORD, dora]).fetchone()[0]


def test_both_paths_cost_one_bcrypt_hash(db, dora):
    existing = min(signup(db, "dora@example.com", "another pass 1")[1] for _ in range(3))
    new = min(signup(db, f"fresh{i}@example.com", "another pass 1")[1] for i in range(3))
    assert max(existing, new) / min(existing, new) < 2


def test_signup_has_no_result_type_that_could_carry_an_id(db):
    rettype = db.execute("select prorettype::regtype::text from pg_proc where oid = 'api.signup(text, text)'::regprocedure")
    assert rettype.fetchone()[0] == "void"


@pytest.mark.parametrize("email, password, message", [
    ("dora@example.com", "short1", "too short"),
    ("not-an-email", "another pass 1", "not a valid address"),
])
def test_bad_input_is_refused_alike_whether_or_not_the_account_exists(db, dora, email, password, message):
    for candidate in (email, email.replace("dora", "zelda")):
        with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
            with db.transaction():  # a savepoint: dora stays
                act_as(db, "anonymous")
                db.execute("select api.signup(%s, %s)", [candidate, password])
    assert db.execute("select count(*) from internal.users where id = %s", [dora]).fetchone()[0] == 1
