"""The one exception ``reference`` raises on purpose."""


class Unsupported(ValueError):
    """An engine cannot run this model or setting; the message names the layer or setting and why.

    Raised by :func:`reference.from_keras`, :func:`reference.to_keras` and the
    scikit-learn drivers. The runner catches it and shows the comparison as
    skipped, with the message as the reason.
    """
