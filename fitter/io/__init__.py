"""fitter.io: from user inputs (files, folders, globs, videos, camera rigs) to decoded, EXIF-oriented pixels
and the cameras that saw them.

Public API::

    load_image(path) -> LoadedImage             # one image file; raises ImageError
    LoadedImage.from_array(pixels, path=...)     # wrap in-memory pixels (video frames, tests)
    discover_inputs(inputs, recursive=False) -> Inputs(images=[...], videos=[...], skipped=[(path, why)])
                                                 # unusable INPUTS raise InputError; strict=False: Inputs.problems
    file_content_hash(path) -> str               # sha256 of the bytes, as LoadedImage.content_hash
    sniff_kind(data) -> (kind, readable)         # what a file's bytes really are
    find_images(inputs, recursive=False) -> list[Path]
    open_video(path, every=1, start=0.0, end=None, fps=None) -> VideoClip   # seconds; iterate: VideoFrame
    read_video_frames(path, every=1, max_frames=None) -> Iterator[LoadedImage]
    video_info(path) -> VideoInfo
    FrameStore(folder)                           # a clip's decoded frames on disk: append(image), [k], close()
    require_space(path, infos, folder, every, start, end) -> bytes   # ImageError when the disk cannot hold them
    convert_rig(source, format="auto", units=None | scale=None) -> Rig    # COLMAP / NeRF / OpenCV / none
    save_rig(rig, "rig.json"); load_rig("rig.json") -> Rig                # facefit's rig format (docs/rig.md)
    discover_multiview(folder, rig=None) -> MultiViewInput                # DIR/<camera>/<frame>.png | DIR/<camera>.mp4
    ImageError, InputError(ImageError), RigError(ImageError)
"""
from .errors import ImageError, InputError
from .frame_store import FrameStore, require_space
from .images import (ALPHA_BACKGROUND, IMAGE_EXTENSIONS, LoadedImage, apply_exif_orientation, file_content_hash,
                     image_header_size, load_image, sniff_kind)
from .inputs import (VIDEO_EXTENSIONS, Inputs, discover_inputs, find_images, is_image_path, is_video_path,
                     unsupported_reason)
from .multiview import MultiViewInput, discover_multiview
from .rig import Rig, RigCamera, RigError, load_rig, save_rig
from .rig_convert import RIG_FORMATS, convert_rig
from .video import FALLBACK_FPS, VideoClip, VideoFrame, VideoInfo, open_video, read_video_frames, video_info

__all__ = [
    "ALPHA_BACKGROUND",
    "FALLBACK_FPS",
    "FrameStore",
    "IMAGE_EXTENSIONS",
    "RIG_FORMATS",
    "VIDEO_EXTENSIONS",
    "ImageError",
    "InputError",
    "Inputs",
    "LoadedImage",
    "MultiViewInput",
    "Rig",
    "RigCamera",
    "RigError",
    "VideoClip",
    "VideoFrame",
    "VideoInfo",
    "apply_exif_orientation",
    "convert_rig",
    "discover_inputs",
    "discover_multiview",
    "file_content_hash",
    "find_images",
    "image_header_size",
    "is_image_path",
    "is_video_path",
    "load_image",
    "load_rig",
    "open_video",
    "read_video_frames",
    "require_space",
    "save_rig",
    "sniff_kind",
    "unsupported_reason",
    "video_info",
]
