"""No per-request state survives its transaction, also when connections are shared through PgBouncer."""

import concurrent.futures

import httpx


def test_role_claims_and_headers_never_leak_between_requests(gateway):
    user = {"Authorization": f"Bearer {gateway.token(role='gw_user', sub='leak-check')}", "X-Test": "secret-ua"}

    def call(i: int) -> tuple[int, dict]:
        signed_in = i % 2 == 0
        reply = httpx.get(gateway.url + "/rpc/whoami", headers=user if signed_in else {}, timeout=10)
        return i, reply.json()

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(120)))
    for i, who in results:
        if i % 2 == 0:
            assert who["role"] == "gw_user" and who["claims"]["sub"] == "leak-check" and who["ua"] == "secret-ua"
        else:
            assert who["role"] == "gw_anon" and who["claims"] == {"role": "gw_anon"} and who["ua"] is None
