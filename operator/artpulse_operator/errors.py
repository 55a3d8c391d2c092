"""The operator's own error for a spec it cannot act on."""


class InvalidSpec(ValueError):
    """The resource's spec cannot be acted on; the message names the field and the bad value."""
