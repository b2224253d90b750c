"""fitter.io: from user inputs (files, folders, globs, videos) to decoded, EXIF-oriented pixels.

Public API::

    load_image(path) -> LoadedImage             # one image file; raises ImageError
    LoadedImage.from_array(pixels, path=...)     # wrap in-memory pixels (video frames, tests)
    discover_inputs(inputs, recursive=False) -> Inputs(images=[...], videos=[...])
    find_images(inputs, recursive=False) -> list[Path]
    open_video(path, every=1, start=0.0, end=None, fps=None) -> VideoClip   # seconds; iterate: VideoFrame
    read_video_frames(path, every=1, max_frames=None) -> Iterator[LoadedImage]
    video_info(path) -> VideoInfo
    ImageError, InputError(ImageError)
"""
from .errors import ImageError, InputError
from .images import ALPHA_BACKGROUND, IMAGE_EXTENSIONS, LoadedImage, apply_exif_orientation, load_image
from .inputs import VIDEO_EXTENSIONS, Inputs, discover_inputs, find_images, is_image_path, is_video_path
from .video import FALLBACK_FPS, VideoClip, VideoFrame, VideoInfo, open_video, read_video_frames, video_info

__all__ = [
    "ALPHA_BACKGROUND",
    "FALLBACK_FPS",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "ImageError",
    "InputError",
    "Inputs",
    "LoadedImage",
    "VideoClip",
    "VideoFrame",
    "VideoInfo",
    "apply_exif_orientation",
    "discover_inputs",
    "find_images",
    "is_image_path",
    "is_video_path",
    "load_image",
    "open_video",
    "read_video_frames",
    "video_info",
]
