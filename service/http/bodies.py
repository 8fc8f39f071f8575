"""A request body is taken as the OpenAPI document types it, nothing looser.

Litestar converts a handler's ``data`` leniently (msgspec ``strict=False``, which query
strings need): ``"quantity": "2"`` became 2, ``"active": 0`` False, a number a date-time. The
document says integer, boolean, string, so a client generated from it never sends those,
and a server that takes them answers requests its contract calls invalid. ``strict_body``
(the ``before_request`` of every route with a body: it runs after the guards, so a caller
without the admin key still learns nothing of the body) refuses such a body the way Litestar
refuses a wrong type, naming the field: 422 ``validation-error``. A body that fails leniently
too is left to Litestar, which answers it as before. The fast lane decodes strictly already.

One conversion stays: a number with no fraction (``2.0``, ``1e3``) where an integer is due.
JSON Schema counts it an integer, so a client or a fuzzer true to the document may send it.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ValidationException

_LOCATION = re.compile(r"^(?P<message>.*?)(?: - at `\$\.?(?P<path>[^`]*)`)?$", re.DOTALL)


async def strict_body(request: Request[Any, Any, Any]) -> None:
    """Refuse a body that only a lenient conversion takes (see the module's docstring)."""
    data = request.route_handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return
    body = await request.body()
    try:
        msgspec.convert(_whole_numbers_as_int(msgspec.json.decode(body)), data.annotation, strict=True)
        return
    except msgspec.ValidationError as exc:
        strict_error = str(exc)
    except msgspec.MsgspecError:
        return  # not JSON: Litestar's 400
    try:
        msgspec.json.decode(body, type=data.annotation, strict=False)
    except msgspec.MsgspecError:
        return  # refused either way: Litestar's own answer names the fault
    found = _LOCATION.match(strict_error)
    assert found is not None  # the pattern matches any text
    error: dict[str, str] = {"message": found["message"], "source": "body"}
    if found["path"]:
        error["key"] = found["path"]
    raise ValidationException(detail="Validation failed", extra=[error])


def _whole_numbers_as_int(value: Any) -> Any:
    """The decoded JSON with each float that has no fraction as an int (JSON Schema's integer)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _whole_numbers_as_int(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_numbers_as_int(item) for item in value]
    return value
