"""fitter.io: from user inputs (files, folders, globs, videos, camera rigs) to decoded, EXIF-oriented pixels
and the cameras that saw them.

Public API::

    load_image(path) -> LoadedImage             # one image file; raises ImageError
    LoadedImage.from_array(pixels, path=...)     # wrap in-memory pixels (video frames, tests)
    discover_inputs(inputs, recursive=False) -> Inputs(images=[...], videos=[...])
    find_images(inputs, recursive=False) -> list[Path]
    open_video(path, every=1, start=0.0, end=None, fps=None) -> VideoClip   # seconds; iterate: VideoFrame
    read_video_frames(path, every=1, max_frames=None) -> Iterator[LoadedImage]
    video_info(path) -> VideoInfo
    convert_rig(source, format="auto", units=None | scale=None) -> Rig    # COLMAP / NeRF / OpenCV / none
    save_rig(rig, "rig.json"); load_rig("rig.json") -> Rig                # facefit's rig format (docs/rig.md)
    discover_multiview(folder, rig=None) -> MultiViewInput                # DIR/<camera>/<frame>.png | DIR/<camera>.mp4
    ImageError, InputError(ImageError), RigError(ImageError)
"""
from .errors import ImageError, InputError
from .images import ALPHA_BACKGROUND, IMAGE_EXTENSIONS, LoadedImage, apply_exif_orientation, load_image
from .inputs import VIDEO_EXTENSIONS, Inputs, discover_inputs, find_images, is_image_path, is_video_path
from .multiview import MultiViewInput, discover_multiview
from .rig import Rig, RigCamera, RigError, load_rig, save_rig
from .rig_convert import RIG_FORMATS, convert_rig
from .video import FALLBACK_FPS, VideoClip, VideoFrame, VideoInfo, open_video, read_video_frames, video_info

__all__ = [
    "ALPHA_BACKGROUND",
    "FALLBACK_FPS",
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
    "find_images",
    "is_image_path",
    "is_video_path",
    "load_image",
    "load_rig",
    "open_video",
    "read_video_frames",
    "save_rig",
    "video_info",
]
