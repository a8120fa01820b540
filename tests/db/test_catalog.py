"""Catalog checks: the security rules hold for every object, present and future."""

import psycopg

API_ROLES = ("anonymous", "app_user", "app_admin")


def test_every_table_in_exposed_and_private_schemas_has_rls(db):
    missing = db.execute("""
        select n.nspname || '.' || c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where c.relkind in ('r', 'p') and n.nspname in ('api', 'internal') and not c.relrowsecurity
    """).fetchall()
    assert missing == []


def test_every_security_definer_function_pins_search_path(db):
    unpinned = db.execute("""
        select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where p.prosecdef and n.nspname in ('api', 'auth', 'internal')
          and not exists (select from unnest(p.proconfig) c where c like 'search_path=%')
    """).fetchall()
    assert unpinned == []


def test_no_function_is_executable_by_public(db):
    open_to_public = db.execute("""
        select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname in ('api', 'auth', 'internal') and has_function_privilege('public', p.oid, 'execute')
    """).fetchall()
    assert open_to_public == []


def test_views_are_security_invoker_except_the_monitoring_ones(db):
    definer_views = db.execute("""
        select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'api' and c.relkind = 'v'
          and not coalesce('security_invoker=true' = any(c.reloptions), false)
        order by 1
    """).fetchall()
    assert definer_views == [("db_stats",), ("query_stats",)]


def test_every_exposed_object_has_a_comment(db):
    undocumented = db.execute("""
        select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'api' and c.relkind in ('r', 'v', 'm') and obj_description(c.oid, 'pg_class') is null
        union all
        select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'api' and obj_description(p.oid, 'pg_proc') is null
    """).fetchall()
    assert undocumented == []


def test_no_api_role_can_reach_a_password_column(db):
    reachable = db.execute("""
        select r, a.attrelid::regclass::text from pg_attribute a, unnest(%s::text[]) r
        where a.attname = 'password' and not a.attisdropped
          and a.attrelid in (select oid from pg_class where relnamespace in
                             (select oid from pg_namespace where nspname in ('api', 'internal', 'auth')))
          and has_column_privilege(r, a.attrelid, a.attname, 'select')
    """, [list(API_ROLES)]).fetchall()
    assert reachable == []


def test_authenticator_is_noinherit_login_and_can_only_become_api_roles(db):
    row = db.execute("select rolcanlogin, rolinherit, rolsuper from pg_roles where rolname = 'authenticator'")
    assert row.fetchone() == (True, False, False)
    granted = db.execute("""
        select r.rolname from pg_auth_members m join pg_roles r on r.oid = m.roleid
        where m.member = 'authenticator'::regrole order by 1
    """).fetchall()
    assert granted == [("anonymous",), ("app_admin",), ("app_user",)]


def test_required_extensions_are_installed(db):
    names = {r[0] for r in db.execute("select extname from pg_extension")}
    assert {"pgcrypto", "uuid-ossp", "pg_cron", "pg_stat_statements"} <= names


def test_nightly_cleanup_job_is_registered(db):
    job = db.execute("select schedule, command from cron.job where jobname = 'cleanup-expired-offers'").fetchone()
    assert job == ("0 0 * * *", "select api.expire_offers(current_date)")


def test_cron_job_command_runs(db):
    command = db.execute("select command from cron.job where jobname = 'cleanup-expired-offers'").fetchone()[0]
    db.execute(command)


def test_server_preloads_cron_and_statements(db):
    preload = db.execute("show shared_preload_libraries").fetchone()[0]
    assert "pg_cron" in preload and "pg_stat_statements" in preload


def test_api_roles_cannot_use_cron(db):
    for role in API_ROLES:
        db.execute("select set_config('role', %s, true)", [role])
        try:
            db.execute("select cron.schedule('evil', '* * * * *', 'select 1')")
        except psycopg.errors.InsufficientPrivilege:
            pass
        else:
            raise AssertionError(f"{role} could schedule a cron job")
        db.rollback()
