"""State keys as Fabric builds and checks them: composite keys, simple-key rules, range-query bounds."""

from chaincode.shim.errors import StubError

COMPOSITE_KEY_NAMESPACE = "\x00"
MIN_UNICODE_RUNE = "\x00"
MAX_UNICODE_RUNE = "\U0010ffff"
# The peer reads an empty start key as "from the very first key", composite keys included; the shim sends U+0001
# instead so that a simple-key range never wanders into the composite-key namespace (which starts with U+0000).
EMPTY_KEY_SUBSTITUTE = "\x01"


def create_composite_key(object_type: str, attributes: list[str] | tuple[str, ...] = ()) -> str:
    """U+0000, then the type and each attribute each followed by U+0000, as fabric-chaincode-go builds them."""
    _check_composite_part(object_type)
    for attribute in attributes:
        _check_composite_part(attribute)
    return COMPOSITE_KEY_NAMESPACE + "".join(part + MIN_UNICODE_RUNE for part in (object_type, *attributes))


def split_composite_key(composite_key: str) -> tuple[str, list[str]]:
    """The object type and attributes a composite key was made of."""
    if not composite_key.startswith(COMPOSITE_KEY_NAMESPACE) or not composite_key.endswith(MIN_UNICODE_RUNE):
        raise StubError(f"not a composite key: {composite_key!r}")
    object_type, *attributes = composite_key[1:-1].split(MIN_UNICODE_RUNE)
    return object_type, attributes


def partial_composite_key_range(object_type: str, attributes: list[str] | tuple[str, ...] = ()) -> tuple[str, str]:
    """Start (inclusive) and end (exclusive) keys of every composite key extending the partial one."""
    prefix = create_composite_key(object_type, attributes)
    return prefix, prefix + MAX_UNICODE_RUNE


def simple_key_range(start_key: str, end_key: str) -> tuple[str, str]:
    """The bounds a simple-key range query sends to the peer; an empty end key means "to the last key"."""
    start_key = start_key or EMPTY_KEY_SUBSTITUTE
    for key in (start_key, end_key):
        if key.startswith(COMPOSITE_KEY_NAMESPACE):
            raise StubError(f"first character of the key [{key!r}] contains a null character which is not allowed")
    return start_key, end_key


def check_key(key: str) -> None:
    if not isinstance(key, str):
        raise StubError(f"key must be a string, got {type(key).__name__}")
    if key == "":
        raise StubError("key must not be an empty string")


def _check_composite_part(part: str) -> None:
    if not isinstance(part, str):
        raise StubError(f"composite key parts must be strings, got {type(part).__name__}")
    for index, char in enumerate(part):
        if char in (MIN_UNICODE_RUNE, MAX_UNICODE_RUNE):
            raise StubError(
                f"input contains unicode U+{ord(char):04X} starting at position [{index}]; U+0000 and "
                f"U+10FFFF are not allowed in the input attribute of a composite key"
            )
