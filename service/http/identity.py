"""Which cart a request names: a signed-in user's (bearer JWT) or a guest's (signed token).

A guest without a token gets a new cart only when they change something, so a flood of
token-less reads creates nothing.
"""

from __future__ import annotations

from litestar import Request, Response

from service.auth import CartTokens, UserTokens, user_cart_id
from service.cart.service import CartRef

CART_TOKEN_HEADER = "x-cart-token"
CART_TOKEN_COOKIE = "cart_token"
COOKIE_MAX_AGE = 30 * 24 * 3600


def bearer_user(request: Request, users: UserTokens) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        from service.errors import InvalidUserToken

        raise InvalidUserToken("Authorization must be 'Bearer <token>'")
    return users.verify(token.strip())


def guest_token(request: Request) -> str | None:
    return request.headers.get(CART_TOKEN_HEADER) or request.cookies.get(CART_TOKEN_COOKIE) or None


def resolve_cart(request: Request, tokens: CartTokens, users: UserTokens, create: bool) -> tuple[CartRef | None, str | None]:
    """(the cart, a token to send back when a guest cart was just created)."""
    user_id = bearer_user(request, users)
    if user_id is not None:
        return CartRef(cart_id=user_cart_id(user_id), user_id=user_id), None
    token = guest_token(request)
    if token:
        return CartRef(cart_id=tokens.verify(token)), None
    if not create:
        return None, None
    cart_id, new_token = tokens.new_cart()
    return CartRef(cart_id=cart_id), new_token


def existing_cart(request: Request) -> CartRef | None:
    """The cart the request names, if it names one; reads and removals never create one."""
    s = request.app.state.services
    return resolve_cart(request, s.cart_tokens, s.user_tokens, create=False)[0]


def with_cart_token(response: Response, token: str | None, secure: bool) -> Response:
    """Send a newly made guest token back in the header and an HttpOnly cookie."""
    if token:
        response.headers[CART_TOKEN_HEADER] = token
        # Written by hand: Litestar's Cookie objects cost a third of a millisecond each, and
        # a token (base64url, dots, a UUID) needs no quoting.
        response.headers["set-cookie"] = (
            f"{CART_TOKEN_COOKIE}={token}; Max-Age={COOKIE_MAX_AGE}; Path=/; HttpOnly; SameSite=Lax"
            + ("; Secure" if secure else "")
        )
    return response
