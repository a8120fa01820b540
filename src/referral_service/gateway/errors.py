"""One error family for the gateway and PostgREST's SQLSTATE → HTTP mapping.

Every failure a client can cause ends up as an :class:`ApiError`; the errors middleware renders it with
:func:`render`. Codes are grouped by the stage that raises them (PGRST1xx request, PGRST2xx schema cache,
PGRST3xx auth, PGRST0xx connection), as in PostgREST's ``Error.hs``.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

JSON_CT = b"application/json; charset=utf-8"
_HEADER_CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f]")  # what an HTTP server refuses in a value (HTAB is fine)


def header_text(value: str) -> str:
    """``value`` fit for a response header: control characters percent-encoded. A header value that SQL
    chose (``response.headers``, ``RAISE SQLSTATE 'PGRST'``) with a raw CR/LF would make the server drop the
    whole response, and must never split it into two headers."""
    return _HEADER_CONTROLS.sub(lambda m: f"%{ord(m.group()):02X}", value)


class ApiError(Exception):
    """An error with an HTTP status and PostgREST's four-key body."""

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        details: Any = None,
        hint: Any = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint
        self.headers = headers or []

    def body(self) -> bytes:
        # Compact and key-sorted, exactly what PostgREST sends (its tests assert Content-Length).
        payload = {"code": self.code, "details": self.details, "hint": self.hint, "message": self.message}
        return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)

    def __repr__(self) -> str:
        return f"ApiError({self.status}, {self.code!r}, {self.message!r})"


class ClientDisconnected(Exception):
    """The client hung up before its request body was complete: nothing to run, nobody to answer."""


def render(err: ApiError) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body of an error response."""
    body = err.body()
    headers = [(b"content-type", JSON_CT), (b"content-length", str(len(body)).encode())]
    if err.code:
        headers.append((b"proxy-status", f"PostgREST; error={err.code}".encode()))
    if err.status in (503, 504) and not any(k == b"retry-after" for k, _ in err.headers):
        headers.append((b"retry-after", b"0"))
    headers.extend(err.headers)
    return err.status, headers, body


# --- request stage (PGRST1xx) -------------------------------------------------------------------------


def parse_error(what: str, value: str, column: int, details: str) -> ApiError:
    return ApiError(400, "PGRST100", f'"failed to parse {what} ({value})" (line 1, column {column})', details)


def invalid_rpc_method(method: str) -> ApiError:
    return ApiError(405, "PGRST101", f"Cannot use the {method} method on RPC")


def invalid_body(message: str) -> ApiError:
    return ApiError(400, "PGRST102", message)


def invalid_range(details: str, total: int | None = None) -> ApiError:
    headers = [(b"content-range", f"*/{total}".encode())] if total is not None else []
    return ApiError(416, "PGRST103", "Requested range not satisfiable", details, headers=headers)


def invalid_put_filters() -> ApiError:
    return ApiError(405, "PGRST105", "Filters must include all and only primary key columns with 'eq' operators")


def unacceptable_schema(schema: str, exposed: list[str]) -> ApiError:
    return ApiError(
        406, "PGRST106", f"Invalid schema: {schema}", None,
        f"Only the following schemas are exposed: {', '.join(exposed)}",
    )


def unacceptable_media(types: list[str]) -> ApiError:
    return ApiError(406, "PGRST107", f"None of these media types are available: {', '.join(types)}")


def not_embedded(name: str) -> ApiError:
    return ApiError(400, "PGRST108", f"'{name}' is not an embedded resource in this request", None,
                    f"Verify that '{name}' is included in the 'select' query parameter.")


def put_limit() -> ApiError:
    return ApiError(400, "PGRST114", "limit/offset querystring parameters are not allowed for PUT")


def limited_mutation(method: str) -> ApiError:
    """PostgREST v13 dropped limited PATCH/DELETE and ignores ``limit``; refusing it means a client written
    for older versions never updates or deletes every matching row by surprise."""
    return ApiError(400, "PGRST114", f"limit/offset querystring parameters are not allowed for {method}", None,
                    "Use the header 'Prefer: max-affected=<n>, handling=strict' to bound the rows changed, "
                    "and filters that match exactly the rows to change.")


def put_mismatch() -> ApiError:
    return ApiError(400, "PGRST115", "Payload values do not match URL in primary key column(s)")


def singular(rows: int) -> ApiError:
    return ApiError(406, "PGRST116", "Cannot coerce the result to a single JSON object",
                    f"The result contains {rows} rows")


def unsupported_method(method: str) -> ApiError:
    return ApiError(405, "PGRST117", f"Unsupported HTTP method: {method}")


def bad_embed_filter(name: str) -> ApiError:
    return ApiError(400, "PGRST120", f"Bad operator on the '{name}' embedded resource",
                    "Only is null or not is null filters are allowed on embedded resources")


def related_order_not_to_one(origin: str, name: str) -> ApiError:
    return ApiError(400, "PGRST118", f"A related order on '{name}' is not possible",
                    f"'{origin}' and '{name}' do not form a many-to-one or one-to-one relationship")


def aggregates_not_allowed() -> ApiError:
    return ApiError(400, "PGRST123", "Use of aggregate functions is not allowed")


def duplicate_table(alias: str) -> ApiError:
    # What PostgreSQL answers for PostgREST's SQL when two embeds get the same lateral alias.
    return ApiError(400, "42712", f'table name "{alias}" specified more than once')


def strict_preferences(invalid: list[str]) -> ApiError:
    return ApiError(400, "PGRST122", "Invalid preferences given with handling=strict",
                    f"Invalid preferences: {', '.join(invalid)}")


def max_affected(rows: int, limit: int) -> ApiError:
    return ApiError(400, "PGRST124", "Query result exceeds max-affected preference constraint",
                    f"The query affects {rows} rows")


def invalid_path() -> ApiError:
    return ApiError(404, "PGRST125", "Invalid path specified in request URL")


def not_implemented(what: str) -> ApiError:
    return ApiError(400, "PGRST127", "Feature not implemented", what)


def bad_response_headers() -> ApiError:
    return ApiError(500, "PGRST111", "response.headers guc must be a JSON array composed of objects with a "
                    "single key and a string value")


def bad_response_status(value: str) -> ApiError:
    return ApiError(500, "PGRST112", f"response.status guc must be a valid status code: {value}")


def payload_too_large(limit: int) -> ApiError:
    # Gateway limits (no PostgREST equivalent: it leaves them to a proxy), hence the gateway's X range.
    return ApiError(413, "PGRSTX13", "Request body too large", f"The limit is {limit} bytes",
                    "Send fewer rows per request, or raise PGRST_SERVER_MAX_BODY_BYTES")


def anonymous_value_too_long(limit: int) -> ApiError:
    return ApiError(400, "22001", "value too long for an anonymous request",
                    f"Anonymous requests may send at most {limit} characters per value",
                    "Send a shorter value, or sign in")


def anonymous_body_too_large(limit: int) -> ApiError:
    return ApiError(413, "PGRSTX13", "Request body too large", f"The limit for anonymous requests is {limit} bytes",
                    "Send a smaller body, or sign in")


def uri_too_long(limit: int) -> ApiError:
    return ApiError(414, "PGRSTX14", "Request URI too long", f"The limit is {limit} bytes",
                    "Shorten the query string, e.g. call a function with POST /rpc/... and a JSON body")


# --- schema cache stage (PGRST2xx) -------------------------------------------------------------------


def no_relationship(parent: str, child: str, schema: str, hint_name: str | None) -> ApiError:
    using = f" using the hint '{hint_name}'" if hint_name else ""
    return ApiError(
        400, "PGRST200", f"Could not find a relationship between '{parent}' and '{child}' in the schema cache",
        f"Searched for a foreign key relationship between '{parent}' and '{child}'{using} in the schema "
        f"'{schema}', but no matches were found.", None,
    )


def ambiguous_relationship(origin: str, target: str, details: list[dict[str, str]], options: list[str]) -> ApiError:
    alts = ", ".join(f"'{o}'" for o in options)
    return ApiError(
        300, "PGRST201", f"Could not embed because more than one relationship was found for '{origin}' and "
        f"'{target}'", details, f"Try changing '{target}' to one of the following: {alts}. "
        "Find the desired relationship in the 'details' key.",
    )


def function_not_found(schema: str, name: str, keys: list[str], hint: str | None, json_post: bool = False,
                       ) -> ApiError:
    keys = sorted(keys)
    sig = f"{schema}.{name}({', '.join(keys)})" if keys else f"{schema}.{name} without parameters"
    searched = f"with parameter{'s' * (len(keys) > 1)} {', '.join(keys)}" if keys else "without parameters"
    if json_post:  # a JSON POST could also have meant a single unnamed json/jsonb parameter
        searched += " or with a single unnamed json/jsonb parameter"
    return ApiError(
        404, "PGRST202", f"Could not find the function {sig} in the schema cache",
        f"Searched for the function {schema}.{name} {searched}, but no matches were found in the schema cache.",
        hint,
    )


def function_not_found_single(schema: str, name: str, typ: str) -> ApiError:
    """A text/plain, text/xml or octet-stream POST names no parameters: no list in the message."""
    return ApiError(404, "PGRST202", f"Could not find the function {schema}.{name} in the schema cache",
                    f"Searched for the function {schema}.{name} with a single unnamed {typ} parameter, but no "
                    "matches were found in the schema cache.")


def ambiguous_function_between(candidates: str) -> ApiError:
    return ApiError(300, "PGRST203", f"Could not choose the best candidate function between: {candidates}", None,
                    "Try renaming the parameters or the function itself in the database so function "
                    "overloading can be resolved")


def column_not_found(table: str, column: str) -> ApiError:
    return ApiError(400, "PGRST204", f"Could not find the '{column}' column of '{table}' in the schema cache")


def table_not_found(schema: str, name: str, closest: str | None) -> ApiError:
    hint = f"Perhaps you meant the table '{schema}.{closest}'" if closest else None
    return ApiError(404, "PGRST205", f"Could not find the table '{schema}.{name}' in the schema cache", None, hint)


def undefined_column(table: str, column: str) -> ApiError:
    # The same body PostgreSQL's 42703 gives, raised before any SQL is built.
    return ApiError(400, "42703", f"column {table}.{column} does not exist")


def schema_cache_not_ready() -> ApiError:
    return ApiError(503, "PGRST002", "Could not query the database for the schema cache. Retrying.",
                    headers=[(b"retry-after", b"1")])


# --- connection and auth (PGRST0xx, PGRST3xx) ---------------------------------------------------------


def nul_in_value() -> ApiError:
    """What PostgreSQL answers for a NUL in text input (PostgREST passes it on as a 400)."""
    return ApiError(400, "22021", 'invalid byte sequence for encoding "UTF8": 0x00')


def internal() -> ApiError:
    return ApiError(500, "PGRSTX00", "Internal server error")


def connection_error(message: str) -> ApiError:
    return ApiError(503, "PGRST000", "Database connection error. Retrying the connection.", message,
                    headers=[(b"retry-after", b"1")])


def pool_timeout() -> ApiError:
    return ApiError(504, "PGRST003", "Timed out acquiring connection from connection pool.")


def _invalid_token(code: str, message: str) -> ApiError:
    value = f'Bearer error="invalid_token", error_description="{message}"'.encode()
    return ApiError(401, code, message, headers=[(b"www-authenticate", value)])


def jwt_decode(message: str) -> ApiError:
    return _invalid_token("PGRST301", message)


def jwt_claims(message: str) -> ApiError:
    return _invalid_token("PGRST303", message)


def role_refused(role: str, exists: bool) -> ApiError:
    # What set_config('role', ...) itself would say; refused before SQL so it is never attempted.
    headers = [(b"www-authenticate", b"Bearer")]
    if not exists:
        return ApiError(401, "22023", f'role "{role}" does not exist', headers=headers)
    return ApiError(401, "42501", f'permission denied to set role "{role}"', headers=headers)


# --- PostgreSQL errors ---------------------------------------------------------------------------------


def pg_status(sqlstate: str, message: str, authed: bool) -> int:
    """PostgREST's ``pgErrorStatus``: first matching rule wins."""
    s = sqlstate
    if s.startswith("08"):
        return 503
    if s.startswith("09"):
        return 500
    if s.startswith(("0L", "0P")):
        return 403
    if s in ("23503", "23505"):
        return 409
    if s == "25006":
        return 405
    if s == "21000":
        return 400 if message.endswith("requires a WHERE clause") else 500
    if s == "22023":
        return 401 if message.startswith("role ") and message.endswith("does not exist") else 400
    if s.startswith("25"):
        return 500
    if s.startswith("28"):
        return 403
    if s.startswith(("2D", "38", "39", "3B", "40")):
        return 500
    if s == "53400":
        return 500
    if s.startswith("53"):
        return 503
    if s == "57P01":
        return 503
    if s.startswith(("54", "55", "57", "58", "F0", "HV", "XX")):
        return 500
    if s == "P0001":
        return 400
    if s.startswith("P0"):
        return 500
    if s == "42883":
        return 406 if message.startswith("function xmlagg(") else 404
    if s == "42P01":
        return 404
    if s == "42P17":
        return 500
    if s == "42501":
        return 403 if authed else 401
    if s.startswith("PT") and s[2:].isdigit():
        return int(s[2:])
    return 400


def from_pg(exc: Any, authed: bool) -> ApiError:
    """Map a psycopg error (anything with ``.sqlstate`` and ``.diag``) to an ApiError."""
    diag = exc.diag
    sqlstate = exc.sqlstate or "XX000"
    message = diag.message_primary or str(exc)
    if sqlstate == "PGRST":
        return _raised_pgrst(message, diag.message_detail)
    status = pg_status(sqlstate, message, authed)
    err = ApiError(status, sqlstate, message, diag.message_detail, diag.message_hint)
    if status == 401:
        err.headers.append((b"www-authenticate", b"Bearer"))
    if status == 503:
        err.headers.append((b"retry-after", b"0"))
    return err


def _raised_pgrst(message: str, detail: str | None) -> ApiError:
    """``RAISE SQLSTATE 'PGRST'``: MESSAGE and DETAIL are JSON that control the whole response."""
    try:
        body = orjson.loads(message)
        meta = orjson.loads(detail or "")
        status = int(meta["status"])
        headers = [(k.lower().encode(), header_text(str(v)).encode()) for k, v in (meta.get("headers") or {}).items()]
        if not isinstance(body, dict):
            raise ValueError
        return ApiError(status, body.get("code"), body.get("message", ""), body.get("details"),
                        body.get("hint"), headers)
    except (ValueError, KeyError, TypeError, AttributeError):
        return ApiError(500, "PGRST121", "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error",
                        "Invalid JSON value for MESSAGE: '" + message + "'",
                        "MESSAGE must be a JSON object with obligatory keys: 'code', 'message'.")
