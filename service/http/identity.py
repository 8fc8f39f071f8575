"""Which cart a request names: a signed-in user's (bearer JWT) or a guest's (signed token).

Read from the raw ASGI headers, so the Litestar handlers, the fast lane
(``service.http.fastlane``) and the rate limiter decide alike. A guest without a token
gets a new cart only when they change something, so a flood of token-less reads creates
nothing.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, cast

from litestar.types import Scope

from service.auth import CartRef, CartTokens, UserTokens, user_cart_id
from service.errors import DomainError, InvalidUserToken
from service.wiring import services_of

CART_TOKEN_HEADER = "x-cart-token"
CART_TOKEN_COOKIE = "cart_token"
COOKIE_MAX_AGE = 30 * 24 * 3600
_COOKIE_NAME = CART_TOKEN_COOKIE.encode()


class Credentials(NamedTuple):
    authorization: str | None  # the Authorization header as sent
    cart_token: str | None  # X-Cart-Token, else the cart_token cookie


def credentials(scope: Scope) -> Credentials:
    """The caller's credentials from the request headers (the first of each name counts;
    an empty value counts as absent)."""
    authorization = token = cookie = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value if authorization is None else authorization
        elif name == b"x-cart-token":
            token = value if token is None else token
        elif name == b"cookie":
            cookie = value if cookie is None else cookie
    if not token and cookie:
        token = _cookie(cookie, _COOKIE_NAME)
    return Credentials(
        authorization.decode("latin-1") if authorization else None, token.decode("latin-1") if token else None
    )


def _cookie(raw: bytes, name: bytes) -> bytes | None:
    for pair in raw.split(b";"):
        key, _, value = pair.strip().partition(b"=")
        if key == name and value:
            return value
    return None


def bearer_user(scope: Scope, users: UserTokens) -> str | None:
    """The signed-in user's id, None without an Authorization header; 401 for a bad one."""
    return _bearer(credentials(scope).authorization, users)


def _bearer(header: str | None, users: UserTokens) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidUserToken("Authorization must be 'Bearer <token>'")
    return users.verify(token.strip())


def guest_token(scope: Scope) -> str | None:
    return credentials(scope).cart_token


_NAMED_CART = "ticket_cart.named_cart"  # the scope key of the verified answer (or its error)


def named_cart(scope: Scope, tokens: CartTokens, users: UserTokens) -> CartRef | None:
    """The cart the request's credentials name, verified once per request (the rate limiter
    and the handler both ask); a bad credential raises its 401 each time it is asked."""
    # What this function stored there: _verify's answer or its error (None: not asked yet).
    known = cast("CartRef | Literal[False] | DomainError | None", scope.get(_NAMED_CART))
    if known is None:
        try:
            known = _verify(credentials(scope), tokens, users)
        except DomainError as exc:
            known = exc
        scope[_NAMED_CART] = known  # type: ignore[literal-required]
    if isinstance(known, DomainError):
        raise known
    return known or None


def _verify(sent: Credentials, tokens: CartTokens, users: UserTokens) -> CartRef | Literal[False]:
    user_id = _bearer(sent.authorization, users)
    if user_id is not None:
        return CartRef(cart_id=user_cart_id(user_id), user_id=user_id)
    if sent.cart_token:
        return CartRef(cart_id=tokens.verify(sent.cart_token))
    return False  # no credentials (cached as such; None means "not asked yet")


def resolve_cart(
    scope: Scope, tokens: CartTokens, users: UserTokens, create: bool
) -> tuple[CartRef | None, str | None]:
    """(the cart, a token to send back when a guest cart was just created)."""
    cart = named_cart(scope, tokens, users)
    if cart is not None:
        return cart, None
    if not create:
        return None, None
    cart_id, new_token = tokens.new_cart()
    return CartRef(cart_id=cart_id), new_token


def existing_cart(scope: Scope) -> CartRef | None:
    """The cart the request names, if it names one; reads and removals never create one."""
    s = services_of(scope)
    return resolve_cart(scope, s.cart_tokens, s.user_tokens, create=False)[0]


def signed_in_user(scope: Scope) -> str | None:
    """The signed-in user's id (bearer JWT), None without an Authorization header; 401 for a bad one."""
    return bearer_user(scope, services_of(scope).user_tokens)


def guest_cart_id(scope: Scope) -> str | None:
    """The guest cart the request's cart token (header, else cookie) names, verified; None
    without one; 401 for a bad one."""
    token = guest_token(scope)
    return services_of(scope).cart_tokens.verify(token) if token else None


def cart_token_headers(token: str | None, secure: bool) -> dict[str, str]:
    """A newly made guest token, sent back in the header and an HttpOnly cookie."""
    if not token:
        return {}
    # Written by hand: Litestar's Cookie objects cost a third of a millisecond each, and
    # a token (base64url, dots, a UUID) needs no quoting.
    return {
        CART_TOKEN_HEADER: token,
        "set-cookie": f"{CART_TOKEN_COOKIE}={token}; Max-Age={COOKIE_MAX_AGE}; Path=/; HttpOnly; SameSite=Lax"
        + ("; Secure" if secure else ""),
    }
