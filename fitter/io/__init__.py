"""fitter.io: from user inputs (files, folders, globs, videos) to decoded, EXIF-oriented pixels.

Public API::

    load_image(path) -> LoadedImage             # one image file; raises ImageError
    LoadedImage.from_array(pixels, path=...)     # wrap in-memory pixels (video frames, tests)
    discover_inputs(inputs, recursive=False) -> Inputs(images=[...], videos=[...], skipped=[(path, why)])
    file_content_hash(path) -> str               # sha256 of the bytes, as LoadedImage.content_hash
    sniff_kind(data) -> (kind, readable)         # what a file's bytes really are
    find_images(inputs, recursive=False) -> list[Path]
    read_video_frames(path, every=1, max_frames=None) -> Iterator[LoadedImage]
    video_info(path) -> VideoInfo
    ImageError, InputError(ImageError)
"""
from .errors import ImageError, InputError
from .images import (ALPHA_BACKGROUND, IMAGE_EXTENSIONS, LoadedImage, apply_exif_orientation, file_content_hash,
                     image_header_size, load_image, sniff_kind)
from .inputs import (VIDEO_EXTENSIONS, Inputs, discover_inputs, find_images, is_image_path, is_video_path,
                     unsupported_reason)
from .video import VideoInfo, read_video_frames, video_info

__all__ = [
    "ALPHA_BACKGROUND",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "ImageError",
    "InputError",
    "Inputs",
    "LoadedImage",
    "VideoInfo",
    "apply_exif_orientation",
    "discover_inputs",
    "file_content_hash",
    "image_header_size",
    "find_images",
    "is_image_path",
    "is_video_path",
    "load_image",
    "read_video_frames",
    "sniff_kind",
    "unsupported_reason",
    "video_info",
]
