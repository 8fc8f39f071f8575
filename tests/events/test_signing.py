"""Our Standard Webhooks signer against the specification's published test vector, and the
receiver's check: good, bad, stale, replayed with another body, rotated."""

from __future__ import annotations

import base64

import pytest

from service.events.signing import InvalidSignature, new_secret, secret_key, sign, verify, webhook_headers

# The test vector of the Standard Webhooks reference libraries (libraries/python/tests/
# test_webhooks.py, test_sign_function; the same in every language's tests).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_signer_reproduces_the_specifications_vector():
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE
    assert sign(VECTOR_SECRET.removeprefix("whsec_"), VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def test_the_vectors_headers_verify_and_anything_changed_does_not():
    headers = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
    }
    verify(VECTOR_SECRET, headers, VECTOR_BODY, now=VECTOR_TIMESTAMP)
    verify(VECTOR_SECRET, {k.title(): v for k, v in headers.items()}, VECTOR_BODY, now=VECTOR_TIMESTAMP + 300)
    with pytest.raises(InvalidSignature):  # the reference tests' invalid signature: one letter off
        verify(
            VECTOR_SECRET,
            {**headers, "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="},
            VECTOR_BODY,
            now=VECTOR_TIMESTAMP,
        )
    with pytest.raises(InvalidSignature):  # the same headers replayed with another body
        verify(VECTOR_SECRET, headers, b'{"test": 2432232315}', now=VECTOR_TIMESTAMP)
    with pytest.raises(InvalidSignature):  # replayed under another id
        verify(VECTOR_SECRET, {**headers, "webhook-id": "msg_other"}, VECTOR_BODY, now=VECTOR_TIMESTAMP)
    with pytest.raises(InvalidSignature):  # another secret
        verify(new_secret(), headers, VECTOR_BODY, now=VECTOR_TIMESTAMP)


@pytest.mark.parametrize("skew", [-301, 301])
def test_a_stale_or_future_timestamp_is_refused(skew):
    headers = webhook_headers([VECTOR_SECRET], VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)
    with pytest.raises(InvalidSignature):
        verify(VECTOR_SECRET, headers, VECTOR_BODY, now=VECTOR_TIMESTAMP - skew)


@pytest.mark.parametrize(
    "broken",
    [
        {"webhook-id": ""},
        {"webhook-timestamp": "hello"},
        {"webhook-signature": ""},
        {"webhook-signature": "v2," + VECTOR_SIGNATURE[3:]},
    ],
)
def test_missing_or_malformed_headers_are_refused(broken):
    headers = {**webhook_headers([VECTOR_SECRET], VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY), **broken}
    with pytest.raises(InvalidSignature):
        verify(VECTOR_SECRET, headers, VECTOR_BODY, now=VECTOR_TIMESTAMP)


def test_during_a_rotation_both_secrets_sign_and_a_receiver_with_either_verifies():
    old, new = new_secret(), new_secret()
    headers = webhook_headers([new, old], "evt_1", VECTOR_TIMESTAMP, b"{}")

    assert (
        headers["webhook-signature"]
        == f"{sign(new, 'evt_1', VECTOR_TIMESTAMP, b'{}')} {sign(old, 'evt_1', VECTOR_TIMESTAMP, b'{}')}"
    )
    verify(old, headers, b"{}", now=VECTOR_TIMESTAMP)
    verify(new, headers, b"{}", now=VECTOR_TIMESTAMP)
    # The reference tests' multi-signature header: unknown versions and wrong ones around a good one.
    noise = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
    verify(
        VECTOR_SECRET,
        {
            "webhook-id": VECTOR_ID,
            "webhook-timestamp": str(VECTOR_TIMESTAMP),
            "webhook-signature": f"{noise} {VECTOR_SIGNATURE}",
        },
        VECTOR_BODY,
        now=VECTOR_TIMESTAMP,
    )


def test_new_secrets_are_whsec_base64_of_32_random_bytes():
    one, two = new_secret(), new_secret()
    assert one.startswith("whsec_") and one != two
    assert len(secret_key(one)) == 32 == len(base64.b64decode(one.removeprefix("whsec_")))
    with pytest.raises(ValueError):
        secret_key("whsec_not base64!")
    with pytest.raises(ValueError):
        secret_key("whsec_")
