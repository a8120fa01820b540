"""The secrets a database holds: installed once, a mismatch refused, changed only by an explicit rotation.

Two secrets live in the database: the authenticator role's password (the gateway's login) and the JWT signing
keys (internal.secrets, see migrations/021_jwt_keys.sql). `migrate` installs each one only when the database
has none yet. Afterwards the environment (or the local secrets file) must name the installed ones; when it
does not, nothing is changed and the command stops with one line that says what to do. Only
`referral-service secrets rotate jwt|authenticator` replaces them, and a JWT rotation keeps the previous key
verifying for a grace period (the gateway verifies with the JWKS of `internal.jwt_keyset()`).

Nothing secret is sent where the server could record it: passwords go as SCRAM verifiers computed here, keys
as bound parameters in a transaction that neither the statement log nor pg_stat_statements keeps
(provision.quiet_transaction); the checks compare fingerprints and verifiers computed on this side.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets as random
from dataclasses import dataclass
from datetime import timedelta

import psycopg

from .config import Secrets
from .errors import OperatorError
from .provision import quiet_transaction, set_role_password

CURRENT, STAGED, PREVIOUS = "jwt_secret", "jwt_secret_next", "jwt_secret_previous:"
AUTHENTICATOR = "authenticator"


class SecretsMismatch(OperatorError):
    """The environment's secret is not the installed one: refused, nothing changed."""


def kid(key: str) -> str:
    """The key id SQL puts into each token's header (auth.jwt_kid): a fingerprint of the key."""
    digest = hmac.new(key.encode(), b"referral-service jwt kid", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:16]


def new_key() -> str:
    return random.token_urlsafe(48)


def scram_matches(verifier: str, password: str) -> bool:
    """Does `password` produce this SCRAM-SHA-256 (or md5) verifier of the authenticator? (RFC 5802 StoredKey)"""
    if verifier.startswith("md5"):
        return verifier[3:] == hashlib.md5((password + AUTHENTICATOR).encode()).hexdigest()
    try:
        method, rest = verifier.split("$", 1)
        params, keys = rest.split("$", 1)
        iterations, salt = params.split(":", 1)
        stored_key = keys.split(":", 1)[0]
    except ValueError:
        return False
    if method != "SCRAM-SHA-256":
        return False
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return hmac.compare_digest(hashlib.sha256(client_key).digest(), base64.b64decode(stored_key))


@dataclass(frozen=True)
class Installed:
    """What the database holds, without the values: key ids, and the authenticator's verifier."""

    has_key_table: bool
    current: str | None  # kid
    staged: str | None
    previous: dict[str, str]  # kid -> verify_until (text)
    authenticator_verifier: str | None  # None: no password set; "" : not readable by this login


def installed(conn: psycopg.Connection) -> Installed:
    has_table = conn.execute("select to_regclass('internal.secrets') is not null").fetchone()[0]
    current = staged = None
    previous: dict[str, str] = {}
    if has_table:
        has_until = conn.execute("select exists (select from pg_attribute where attrelid = 'internal.secrets'::regclass"
                                 " and attname = 'verify_until' and not attisdropped)").fetchone()[0]
        until_sql = "verify_until::text" if has_until else "null::text"
        # the values come back to compute their ids here: before migration 021 there is no kid column
        for name, value, until in conn.execute(
                f"select name, value, {until_sql} from internal.secrets where name like 'jwt\\_secret%'"):
            if name == CURRENT:
                current = kid(value)
            elif name == STAGED:
                staged = kid(value)
            elif name.startswith(PREVIOUS):
                previous[kid(value)] = until
    superuser = conn.execute("select rolsuper from pg_roles where rolname = current_user").fetchone()[0]
    if superuser:
        row = conn.execute("select rolpassword from pg_authid where rolname = %s", [AUTHENTICATOR]).fetchone()
        verifier = row[0] if row else None
    else:
        verifier = ""
    return Installed(has_table, current, staged, previous, verifier)


def _jwt_problem(state: Installed, secrets: Secrets) -> str | None:
    if state.current is None:
        return None
    mine = kid(secrets.jwt_secret)
    if mine == state.current:
        return None
    source = secrets.source("jwt_secret")
    if mine == state.staged:
        return (f"the JWT key from {source} is the staged key {mine}, not yet the signing key "
                f"(current: {state.current}); activate it with `referral-service secrets rotate jwt`")
    if mine in state.previous:
        return (f"the JWT key from {source} ({mine}) was retired by a rotation; the database signs with "
                f"{state.current}: put the current key into {source}")
    return (f"the JWT key from {source} ({mine}) is not the one installed in the database ({state.current}); "
            f"give the installed key in JWT_SECRET (or JWT_SECRET_FILE), or replace it on purpose with "
            f"`referral-service secrets rotate jwt`")


def _authenticator_problem(state: Installed, secrets: Secrets, url: str) -> str | None:
    verifier = state.authenticator_verifier
    if verifier is None:
        return None  # none set yet: install
    ok = scram_matches(verifier, secrets.authenticator_password) if verifier else _can_log_in(url, secrets)
    if ok is not False:
        return None
    source = secrets.source("authenticator_password")
    return (f"the authenticator password from {source} is not the one the database has; give the installed "
            f"one in AUTHENTICATOR_PASSWORD (or AUTHENTICATOR_PASSWORD_FILE), or replace it on purpose with "
            f"`referral-service secrets rotate authenticator`")


def _can_log_in(url: str, secrets: Secrets) -> bool | None:
    """Without the right to read pg_authid: try the login itself (None when the answer is not about the password)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    parts = conninfo_to_dict(url)
    parts.update(user=AUTHENTICATOR, password=secrets.authenticator_password, connect_timeout="5")
    try:
        psycopg.connect(make_conninfo(**parts)).close()
        return True
    except psycopg.OperationalError as exc:
        return False if "password authentication failed" in str(exc) else None


def check(url: str, secrets: Secrets) -> None:
    """Refuse (SecretsMismatch) when the database holds secrets other than the environment's."""
    with psycopg.connect(url, autocommit=True) as conn:
        state = installed(conn)
    for problem in (_jwt_problem(state, secrets), _authenticator_problem(state, secrets, url)):
        if problem:
            raise SecretsMismatch(problem)


def install(url: str, secrets: Secrets) -> list[str]:
    """Install the secrets the database does not have yet; refuse a mismatch with those it has.

    Returns what was installed (empty when everything was there and matched)."""
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        state = installed(conn)
        for problem in (_jwt_problem(state, secrets), _authenticator_problem(state, secrets, url)):
            if problem:
                raise SecretsMismatch(problem)
        done = []
        quiet_transaction(conn)
        if state.authenticator_verifier is None:
            set_role_password(conn, AUTHENTICATOR, secrets.authenticator_password)
            done.append("authenticator password")
        if state.has_key_table and state.current is None:
            conn.execute("insert into internal.secrets (name, value) values (%s, %s)", [CURRENT, secrets.jwt_secret])
            done.append(f"JWT signing key {kid(secrets.jwt_secret)}")
    return done


@dataclass(frozen=True)
class Rotation:
    kid: str  # the key now signing (or staged)
    previous: str | None  # the key it replaced, verifying until `until`
    until: str | None
    staged: bool
    key: str  # the new key's value: for the secrets file, never printed


def rotate_jwt(url: str, key: str | None = None, grace: timedelta = timedelta(days=1),
               stage: bool = False) -> Rotation:
    """Stage a new key (gateways accept it after their next start; SQL does not sign with it yet), or make
    a new key (the staged one, `key`, or a generated one) the signing key; the old one verifies for `grace`."""
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        quiet_transaction(conn)
        rows = dict(conn.execute("select name, value from internal.secrets where name in (%s, %s) for update",
                                 [CURRENT, STAGED]).fetchall())
        if CURRENT not in rows:
            raise OperatorError("no JWT key is installed yet: run `referral-service migrate` first")
        old = rows[CURRENT]
        new = key or (None if stage else rows.get(STAGED)) or new_key()
        if len(new) < 32:
            raise OperatorError("a JWT key must be at least 32 characters long")
        if kid(new) == kid(old):
            raise OperatorError(f"that key ({kid(new)}) is the current signing key already")
        if stage:
            conn.execute("delete from internal.secrets where name = %s", [STAGED])
            conn.execute("insert into internal.secrets (name, value) values (%s, %s)", [STAGED, new])
            return Rotation(kid(new), None, None, True, new)
        # forget expired keys and any earlier copy of the new one (rotating back to an old key)
        conn.execute("delete from internal.secrets where name like 'jwt\\_secret\\_previous:%%'"
                     " and (verify_until <= now() or kid = %s)", [kid(new)])
        conn.execute("delete from internal.secrets where name = %s", [STAGED])
        until = conn.execute(
            "update internal.secrets set name = %s || kid, verify_until = now() + %s where name = %s"
            " returning verify_until::text", [PREVIOUS, grace, CURRENT]).fetchone()[0]
        conn.execute("insert into internal.secrets (name, value) values (%s, %s)", [CURRENT, new])
        conn.execute("notify pgrst, 'reload config'")  # for gateways that can reload their keys
    return Rotation(kid(new), kid(old), until, False, new)


def rotate_authenticator(url: str, password: str | None = None) -> str:
    """Set a new authenticator password (given, or generated); returns it (for the secrets file)."""
    password = password or random.token_urlsafe(36)
    if len(password) < 16:
        raise OperatorError("an authenticator password must be at least 16 characters long")
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        quiet_transaction(conn)
        set_role_password(conn, AUTHENTICATOR, password)
    return password


def keyset(url: str) -> str | None:
    """The JWKS gateways verify with (current, staged, retired but still valid keys), or None when the
    database has no key table or no key yet."""
    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("select to_regprocedure('internal.jwt_keyset(timestamptz)') is not null").fetchone()[0]
        if not exists:
            return None
        keys = conn.execute("select internal.jwt_keyset()").fetchone()[0]
    return json.dumps(keys) if keys["keys"] else None


def gateway_jwt_secret(secrets: Secrets, admin_url: str | None) -> str:
    """What `serve` hands the gateway as PGRST_JWT_SECRET when none is configured: the database's JWKS
    (so a rotation's previous key keeps verifying), else the local key."""
    if admin_url:
        try:
            found = keyset(admin_url)
        except psycopg.Error:
            found = None
        if found:
            return found
    return secrets.jwt_secret


def describe(url: str) -> Installed:
    with psycopg.connect(url, autocommit=True) as conn:
        return installed(conn)


def parse_duration(text: str) -> timedelta:
    """'90s', '30m', '24h', '7d' or plain seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    raw = text.strip().lower()
    number, unit = (raw[:-1], raw[-1]) if raw and raw[-1] in units else (raw, "s")
    try:
        value = float(number)
    except ValueError:
        raise OperatorError(f"{text!r} is not a duration (examples: 3600, 90m, 24h, 7d)") from None
    if value < 0:
        raise OperatorError("a grace period cannot be negative")
    return timedelta(seconds=value * units[unit])
