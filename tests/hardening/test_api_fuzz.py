"""Schemathesis against the app's own OpenAPI document, through a real server: every
operation, valid and invalid input, with and without each kind of credential.

Checks: every check schemathesis has, configured as ``st run`` is by the repository's
``schemathesis.toml`` (the exclusions: rules OpenAPI cannot express, each with its reason);
and every 4xx an ``application/problem+json`` problem with a stable code.
"""

from __future__ import annotations

import uuid
from collections import Counter

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings as hypothesis_settings, strategies as st
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from devtools import PROJECT_ROOT
from service.auth import UserTokens
from tests.api import ADMIN_HEADERS
from tests.live_server import live_server

pytestmark = pytest.mark.usefixtures("clean_state")

EXAMPLES_PER_OPERATION = 25
CONFIG = PROJECT_ROOT / "schemathesis.toml"  # what `st run` reads from the repository
PROBLEM = "application/problem+json"
CREDENTIAL_HEADERS = {"authorization", "x-admin-key", "x-cart-token", "x-sepay-signature", "x-sepay-timestamp"}
SEPAY_KEY = "fuzz-sepay-api-key"  # the live server's SePay mode is apikey
CREDENTIAL_COOKIES = {"cart_token"}


class Seeded:
    """Real things for the fuzzer to name now and then, so it reaches past 401 and 404."""

    def __init__(self, base_url: str, jwt_secret: str) -> None:
        http = httpx.Client(base_url=base_url, timeout=10)
        self.tier_id, event_id = str(uuid.uuid4()), str(uuid.uuid4())
        assert (
            http.put(
                f"/api/admin/tiers/{self.tier_id}",
                headers=ADMIN_HEADERS,
                json={
                    "event_id": event_id,
                    "name": "Fuzzed",
                    "price": 100_000,
                    "currency": "VND",
                    "quantity_total": 10_000,
                    "max_per_order": 10,
                },
            ).status_code
            == 201
        )
        self.promo_code = "FUZZ10"
        assert http.post(
            "/api/admin/promo-codes",
            headers=ADMIN_HEADERS,
            json={"code": self.promo_code, "kind": "percent", "value": 10},
        ).status_code in (200, 201)
        added = http.post("/api/cart/items", json={"tier_id": self.tier_id, "quantity": 1})
        http.cookies.clear()
        order = http.post(
            "/api/orders", json={"email": "fuzz@example.com"}, headers={"X-Cart-Token": added.headers["x-cart-token"]}
        )
        assert order.status_code == 201, order.text
        self.order_id, self.order_token = order.json()["id"], order.json()["access_token"]
        again = http.post("/api/cart/items", json={"tier_id": self.tier_id, "quantity": 1})
        self.cart_token = again.headers["x-cart-token"]
        self.user = f"Bearer {UserTokens(jwt_secret).issue('fuzz-user')}"
        http.close()

    def path_parameters(self, names: set[str]) -> dict[str, str]:
        known = {"tier_id": self.tier_id, "order_id": self.order_id, "code": self.promo_code}
        return {name: value for name, value in known.items() if name in names}

    def credentials(self, operation) -> st.SearchStrategy[dict[str, str]]:
        """Mostly the right credential for the operation, sometimes none or a forged one."""
        forged = {"X-Cart-Token": "v1.forged.token", "Authorization": "Bearer not-a-jwt"}
        if any("adminKey" in requirement for requirement in operation.definition.raw.get("security", [])):
            return st.sampled_from([ADMIN_HEADERS] * 4 + [{}, {"X-Admin-Key": "guess"}])
        if any("sepayApiKey" in requirement for requirement in operation.definition.raw.get("security", [])):
            sepay = {"Authorization": f"Apikey {SEPAY_KEY}"}
            forged_signature = {"X-SePay-Signature": "sha256=" + "0" * 64, "X-SePay-Timestamp": "1700000000"}
            return st.sampled_from([sepay] * 4 + [{}, {"Authorization": "Apikey guess"}, forged_signature])
        cart, user = {"X-Cart-Token": self.cart_token}, {"Authorization": self.user}
        return st.sampled_from(
            [cart, cart, user, user, {**cart, **user}, {"X-Order-Token": self.order_token}, {}, forged]
        )


def _strategy(operation, seeded: Seeded) -> st.SearchStrategy:
    names = {p.name for p in operation.path_parameters}
    cases = [operation.as_strategy(), operation.as_strategy(GenerationMode.NEGATIVE)]
    if names:
        cases.append(operation.as_strategy(path_parameters=seeded.path_parameters(names)))
    return st.tuples(st.one_of(cases), seeded.credentials(operation))


def test_every_operation_answers_as_its_document_says(settings):
    with live_server(settings, SEPAY_AUTH="apikey", SEPAY_API_KEY=SEPAY_KEY) as server:
        seeded = Seeded(server.base_url, settings.jwt_secret)
        config = SchemathesisConfig.from_path(CONFIG)
        schema = schemathesis.openapi.from_url(f"{server.base_url}/schema/openapi.json", config=config)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 18
        statuses: Counter[int] = Counter()
        failures = []
        for operation in operations:
            try:
                _fuzz(operation, seeded, server.base_url, statuses)
            except (Exception, BaseExceptionGroup) as exc:  # every operation has its turn; all reported at the end
                failures.append(f"{operation.label}: {exc}"[:3000])
        print(f"{statuses.total()} fuzz cases, by status: {dict(sorted(statuses.items()))}")
        assert not failures, "\n\n".join(failures) + "\n\nserver log:\n" + server.log()[-3000:]
        assert statuses.total() >= len(operations) * EXAMPLES_PER_OPERATION // 2


def _fuzz(operation, seeded: Seeded, base_url: str, statuses: Counter[int]) -> None:
    session = requests.Session()

    # No shrinking: a failure is reported as found, and the run stays bounded.
    @hypothesis_settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(drawn=_strategy(operation, seeded))
    def fuzz(drawn) -> None:
        case, credentials = drawn
        session.cookies.clear()
        # The drawn credentials decide who calls, not values generated for the security schemes.
        case.headers = {
            name: value for name, value in (case.headers or {}).items() if name.lower() not in CREDENTIAL_HEADERS
        } | credentials
        case.cookies = {name: value for name, value in (case.cookies or {}).items() if name not in CREDENTIAL_COOKIES}
        response = case.call(base_url=base_url, session=session, timeout=10)
        statuses[response.status_code] += 1
        # The checks schemathesis.toml enables for this operation; the credentials are ours, not generated.
        case.validate_response(response, headers=credentials)
        if 400 <= response.status_code < 500:
            assert response.headers["content-type"][0].startswith(PROBLEM), response.text
            assert isinstance(response.json().get("code"), str)

    fuzz()
