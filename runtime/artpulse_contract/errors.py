"""Typed errors for image decoding; each message names the problem and the limit."""


class ImageDecodeError(ValueError):
    """An input could not be turned into an RGB image the feature contract accepts."""


class EmptyImageError(ImageDecodeError):
    """The input holds no bytes."""


class ImageTooLargeError(ImageDecodeError):
    """The encoded input is larger than the byte limit."""


class TooManyPixelsError(ImageDecodeError):
    """The declared image size exceeds the pixel limit (a decompression bomb guard)."""


class NotAnImageError(ImageDecodeError):
    """The bytes are not an image in an accepted format."""


class CorruptImageError(ImageDecodeError):
    """The bytes start like an image but cannot be decoded (truncated or damaged)."""


class UnsupportedImageModeError(ImageDecodeError):
    """The image decodes to a pixel mode that has no defined RGB conversion."""


class BatchImageError(ImageDecodeError):
    """One image of a batch failed; ``index`` is its position in the batch."""

    def __init__(self, index: int, cause: ImageDecodeError) -> None:
        super().__init__(f"image[{index}]: {cause}")
        self.index = index
        self.cause = cause
