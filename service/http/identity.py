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
from service.errors import DomainError, InvalidCartToken, InvalidUserToken
from service.wiring import services_of

CART_TOKEN_HEADER = "x-cart-token"
CART_TOKEN_COOKIE = "cart_token"
COOKIE_MAX_AGE = 30 * 24 * 3600
# Sent with the 401 for a cart_token cookie that does not verify (a key retired after a
# rotation, a cookie altered): the browser drops it, and its next change makes a new cart,
# instead of every request being refused for the cookie's 30 days.
CLEAR_CART_COOKIE = f"{CART_TOKEN_COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"
_COOKIE_NAME = CART_TOKEN_COOKIE.encode()


class Credentials(NamedTuple):
    authorization: str | None  # the Authorization header as sent
    cart_token: str | None  # X-Cart-Token, else the cart_token cookie
    from_cookie: bool = False  # cart_token came from the cookie


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
    from_cookie = False
    if not token and cookie:
        token = _cookie(cookie, _COOKIE_NAME)
        from_cookie = token is not None
    return Credentials(
        authorization.decode("latin-1") if authorization else None,
        token.decode("latin-1") if token else None,
        from_cookie,
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
        try:
            return CartRef(cart_id=tokens.verify(sent.cart_token))
        except InvalidCartToken as refused:
            if sent.from_cookie:  # a script cannot delete an HttpOnly cookie: the answer does
                refused.headers = {**refused.headers, "set-cookie": CLEAR_CART_COOKIE}
            raise
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


def cart_token_headers(token: str | None, secure: bool, scope: Scope | None = None) -> dict[str, str]:
    """A newly made guest token, sent back in an HttpOnly cookie and in the X-Cart-Token
    header, except to a page of the service itself (the storefront): a browser's fetch from
    the same origin says ``Sec-Fetch-Site: same-origin``, a header no script can set, and
    gets the cookie only, so no script of the page can ever read the token. Only a new
    cart's answer looks: the common path pays nothing."""
    if not token:
        return {}
    # Written by hand: Litestar's Cookie objects cost a third of a millisecond each, and
    # a token (base64url, dots, a UUID) needs no quoting.
    cookie = f"{CART_TOKEN_COOKIE}={token}; Max-Age={COOKIE_MAX_AGE}; Path=/; HttpOnly; SameSite=Lax"
    headers = {"set-cookie": cookie + ("; Secure" if secure else "")}
    if scope is None or not _from_own_page(scope):
        headers[CART_TOKEN_HEADER] = token
    return headers


def _from_own_page(scope: Scope) -> bool:
    return any(name == b"sec-fetch-site" and value == b"same-origin" for name, value in scope["headers"])
