"""Values fitted to their columns: cut to the column's length, and text every backend stores."""


def cut(model, field_name, value):
    """`value` cut to the max_length of `model.field_name`: an over-long value must not fail the insert.

    The payload keeps the full value.
    """
    return value[: model._meta.get_field(field_name).max_length]


def storable(text):
    """Text any backend stores: a rejected message may hold NUL (PostgreSQL refuses it) or lone surrogates."""
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
