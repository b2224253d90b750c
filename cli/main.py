"""The ``facefit`` command: parses options and calls the library (no fitting logic lives here)."""
from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

# MediaPipe (glog/TFLite) logs to stderr unless told otherwise before it loads.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console(stderr=True)
NATIVE_LOG = "facefit-native.log"  # with --verbose: MediaPipe's own log lines, in the output folder
PRESET_CHOICES = ("fast", "default", "vfx", "critic")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="facefit")
def main() -> None:
    """facefit: fit a 3D morphable face model to photos (offline, CPU or CUDA)."""


def _preset(name: str, config: Path | None) -> dict:
    from fitter.optimize.presets import PresetError, load_preset

    try:
        return load_preset(name, config)
    except PresetError as exc:
        raise click.UsageError(str(exc)) from exc


def _finite(value: float | None, name: str) -> float | None:
    """A number option must be a real number: click's ranges let nan and inf through."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number", param_hint=name)
    return value


class _Refused(click.ClickException):
    """A run that cannot start: one line (``Error: ...``), exit code 2 like a usage error."""

    exit_code = 2


INTERRUPTED = 130  # exit code of a run stopped by Ctrl-C (128 + SIGINT, what shells report)
SKIPPED_LINES = 10  # unsupported files named one per line before "... and N more (summary.json)"


@main.command()
@click.argument("inputs", nargs=-1)
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Output folder (one sub-folder per face, plus summary.json).")
@click.option("--subject", "subjects", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A folder of photos of one person (one identity), or with --rig a multi-view capture "
                   "(DIR/<camera>/<frame>.png or DIR/<camera>.mp4). Repeatable.")
@click.option("--rig", help="Cameras of the --subject capture: COLMAP text folder, NeRF transforms.json, OpenCV "
                            "YAML, a facefit rig.json, or 'none' (uncalibrated: extrinsics fitted).")
@click.option("--every", default=1, show_default=True, type=click.IntRange(1, 100000),
              help="Videos: fit every N-th frame.")
@click.option("--start", default=0.0, show_default=True, type=click.FloatRange(0), help="Videos: first second.")
@click.option("--end", type=click.FloatRange(0), help="Videos: stop before this second.")
@click.option("--fps", type=click.FloatRange(0, min_open=True), callback=lambda ctx, param, v: _finite(v, "--fps"),
              help="Videos: time frames index / FPS (default: the file's timestamps, else its frame rate).")
@click.option("--obj-sequence", is_flag=True, help="Videos and subjects: also write one posed OBJ per frame.")
@click.option("--preset", default="default", show_default=True, type=click.Choice(PRESET_CHOICES),
              help="Stage schedule and weights (see `facefit presets show NAME`).")
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="TOML file merged over the preset.")
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]))
@click.option("--landmarks", "detector", default="mediapipe", show_default=True,
              type=click.Choice(["mediapipe", "fan"]), help="Landmark detector.")
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(1, 64), help="Images fitted in parallel.")
@click.option("--recursive", is_flag=True, help="Search folders recursively.")
@click.option("--largest", is_flag=True, help="Fit only the largest face of each image.")
@click.option("--resume/--overwrite", default=True, show_default=True,
              help="Skip faces already fitted from the same input with the same settings, or refit them all.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Observation cache (default $FACEFIT_CACHE/observations or ~/.cache/facefit/observations).")
@click.option("--segmentation", type=click.Choice(["auto", "facer", "parser", "landmarks"]),
              help="Part masks for PRDL: facer's FaRL parser, facefit's own parser trained on wild renders, or the "
                   "weaker landmark masks (default: preset).")
@click.option("--parser", type=click.Choice(["farl/lapa/448", "farl/celebm/448"]), help="facer parser.")
@click.option("--parser-weights", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="facer parser weights file (instead of the torch hub cache).")
@click.option("--renderer", type=click.Choice(["auto", "builtin", "pytorch3d"]),
              help="Rasterizer backend (default: the preset's, auto = pytorch3d on CUDA when installed).")
@click.option("--verbose", is_flag=True, help=f"Keep the detector's native log lines in OUT/{NATIVE_LOG}.")
@click.option("--engine", default="local", show_default=True, type=click.Choice(["local", "ray"]),
              help="Where to fit: this machine, or a Ray cluster (OUT on a file system every node shares).")
@click.option("--address", help="With --engine ray: the cluster's head, HOST:PORT, or 'auto' for one started on "
                                "this machine (default: RAY_ADDRESS, else a running local cluster, else a new one).")
@click.option("--cpus-per-fit", type=click.FloatRange(min=0.1), help="With --engine ray: CPUs one worker holds [1].")
@click.option("--gpus-per-fit", type=click.FloatRange(min=0.0, max=64.0),
              help="With --engine ray and --device cuda: GPUs one worker holds, e.g. 0.25 packs four per GPU.")
@click.option("--shard", metavar="K/N", help="Fit only shard K of N (K from 0), e.g. $SLURM_ARRAY_TASK_ID/4; "
                                             "then `facefit summarize OUT`.")
@click.option("--critic", "critic_switch", default="on", show_default=True, type=click.Choice(["on", "off"]),
              help="off: leave the perceptual shape critic out of every stage (the preset's [critic] weight = 0).")
def fit(inputs, out_dir, subjects, rig, every, start, end, fps, obj_sequence, preset, config, device, detector, jobs,
        recursive, largest, resume, cache_dir, segmentation, parser, parser_weights, renderer, verbose, engine, address,
        cpus_per_fit, gpus_per_fit, shard, critic_switch) -> None:
    """Fit every face in INPUTS (image files, folders, glob patterns, videos) and every --subject.

    A video is one subject: one identity, expression and head pose per frame (OUT/<clip>/)."""
    from fitter.app.batch import BatchOptions, plan_batch, run_batch
    from fitter.app.ray_engine import EngineError, RayEngine
    from fitter.app.plan import plan_inputs
    from fitter.common.files import OutputFolderError

    shard = _shard(shard)
    cluster = _cluster_options(engine, device, jobs, address, cpus_per_fit, gpus_per_fit)
    if engine == "local":
        _check_device(device)
    if not inputs and not subjects:
        raise click.UsageError("nothing to fit: give INPUTS (photos, folders, videos) or --subject DIR")
    if rig and len(subjects) != 1:
        raise click.UsageError("--rig describes the cameras of one capture: give exactly one --subject DIR with it")
    if end is not None and end <= start:
        raise click.UsageError(f"--end {end:g} must be after --start {start:g} (both in seconds)")
    settings = _preset(preset, config)  # the config first: it is checked before any input is read
    clip = {"every": every, "start": start, "end": end, "fps": fps, "obj_sequence": obj_sequence}
    plan = plan_inputs(list(inputs), list(subjects), rig, clip, recursive)
    if not plan.usable():
        raise _Refused(plan.refusal())
    paths, units, not_fitted, skipped = plan.photos, plan.subjects, plan.failed, plan.skipped
    if renderer:
        settings["renderer"] = renderer
    if critic_switch == "off":
        settings["critic"] = dict(settings["critic"], weight=0.0)
    options = BatchOptions(preset=settings, detector=detector, largest=largest, device=device,
                           jobs=jobs, resume=resume, cache_dir=str(cache_dir) if cache_dir else None,
                           segmentation=segmentation, parser=parser,
                           parser_weights=str(parser_weights) if parser_weights else None)
    if verbose:
        from fitter.observe.mediapipe_backend import NATIVE_LOG_ENV

        os.environ[NATIVE_LOG_ENV] = str(Path(out_dir).absolute() / NATIVE_LOG)
    with Progress(TextColumn("[bold]fitting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=console, transient=True) as progress:
        task = progress.add_task("", total=len(plan_batch(paths, not_fitted, skipped, shard).jobs) + len(units))
        phases: dict[str, int] = {}

        def advance(outcome) -> None:
            for face in outcome.faces:
                if face.note:
                    progress.console.print(face.note, markup=False, highlight=False, soft_wrap=True)
            progress.update(task, advance=1, description=Path(outcome.input).name)

        def subject_phase(name: str, phase: str, done: int, total: int) -> None:
            if phase not in phases:
                phases[phase] = progress.add_task("", total=total)
            progress.update(phases[phase], completed=done, total=total, description=f"{name}: {phase}")

        try:
            runner = RayEngine(**cluster) if cluster else None
            with runner or nullcontext():
                summary = run_batch(paths, out_dir, options, on_image=advance, extra_failures=not_fitted,
                                    skipped_inputs=skipped, shard=shard, engine=runner, subjects=units,
                                    on_subject_progress=subject_phase)
        except (OutputFolderError, EngineError) as exc:
            raise _Refused(str(exc)) from exc
        except KeyboardInterrupt:  # Ctrl-C: what is finished stays; say how to go on (exit 130, as shells do)
            progress.stop()
            console.print(f"interrupted: the faces finished so far are in {escape(str(out_dir))}/; run the same "
                          "command again to fit the rest (finished faces are skipped)", soft_wrap=True)
            sys.exit(INTERRUPTED)
    _print_summary(summary, out_dir, shard.summary_name if shard else "summary.json")
    if shard:
        console.print(f"shard {shard.label}: summary in {escape(shard.summary_name)}; when all {shard.count} shards "
                      f"are done, `facefit summarize {escape(str(out_dir))}` writes summary.json", soft_wrap=True)
    if summary["fitted"] == 0 and summary["skipped"] == 0:
        sys.exit(1)


def _shard(text: str | None):
    from fitter.app.shards import Shard, ShardError

    try:
        return Shard.parse(text) if text is not None else None
    except ShardError as exc:
        raise click.BadParameter(str(exc), param_hint="--shard") from exc


def _cluster_options(engine: str, device: str, jobs: int, address, cpus_per_fit, gpus_per_fit) -> dict | None:
    """The Ray engine's settings (None for the local engine), after checking the options fit together."""
    given = [name for name, v in (("--address", address), ("--cpus-per-fit", cpus_per_fit),
                                  ("--gpus-per-fit", gpus_per_fit)) if v is not None]
    if engine == "local":
        if given:
            raise click.UsageError(f"{', '.join(given)} only apply with --engine ray")
        return None
    if jobs > 1:
        raise click.UsageError("--jobs is for the local engine; with --engine ray the cluster's CPUs (and "
                               "--cpus-per-fit) set how many images are fitted at once")
    gpus = gpus_per_fit or 0.0
    if device == "cuda" and gpus == 0:
        raise click.UsageError("--device cuda with --engine ray needs --gpus-per-fit (e.g. 1, or 0.25 to pack "
                               "four fits on each GPU); without it Ray hides the GPUs from the workers")
    if device == "cpu" and gpus > 0:
        raise click.UsageError("--gpus-per-fit reserves GPUs the fits would not use: add --device cuda")
    return {"address": address, "cpus_per_fit": cpus_per_fit or 1.0, "gpus_per_fit": gpus}


def _print_skipped(skipped: list[dict]) -> None:
    for item in skipped[:SKIPPED_LINES]:
        console.print(f"[yellow]skipped[/yellow] {escape(item['reason'])}", soft_wrap=True)
    if len(skipped) > SKIPPED_LINES:
        console.print(f"[yellow]skipped[/yellow] ... and {len(skipped) - SKIPPED_LINES} more files of "
                      f"unsupported types (listed in summary.json under skipped_inputs)")


def _print_summary(summary: dict, out_dir: Path, summary_name: str = "summary.json") -> None:
    table = Table()
    numbers = ("RMSE px", "NME", "part IoU", "outliers", "s")
    for col in ("face folder", "status", *numbers, "suspect"):
        table.add_column(col, justify="right" if col in numbers else "left")
    for f in summary["faces"]:
        fmt = lambda v, p: "" if v is None else f"{v:.{p}f}"  # noqa: E731
        table.add_row(escape(f["folder"]), f["status"], fmt(f["rmse_px"], 2), fmt(f["nme"], 4),
                      fmt(f.get("iou"), 3), fmt(f.get("outlier_fraction"), 2), fmt(f["seconds"], 2),
                      escape(f.get("suspect") or ""))
    console.print(table)
    others = len(summary.get("skipped_inputs", []))
    console.print(f"facefit: {summary['fitted']} fitted, {summary['skipped']} skipped, "
                  f"{len(summary['failed'])} failed ({summary['seconds']:.1f} s)"
                  + (f"; {others} file(s) of unsupported types not read" if others else ""), soft_wrap=True)
    for fail in summary["failed"]:
        console.print(f"[red]failed[/red] {escape(fail['reason'])}", soft_wrap=True)
    _print_skipped(summary.get("skipped_inputs", []))
    console.print(f"outputs in {escape(str(out_dir))}/ ({escape(summary_name)})")


@main.command()
@click.argument("out_dir", metavar="OUT", type=click.Path(path_type=Path))
def summarize(out_dir) -> None:
    """Rebuild OUT/summary.json and the table from the face folders (after shards or a cluster run)."""
    from fitter.app.summaries import NothingToSummarise, write_rebuilt_summary

    try:
        summary = write_rebuilt_summary(out_dir)
    except (NothingToSummarise, OSError) as exc:
        raise _Refused(str(exc)) from exc
    _print_summary(summary, out_dir)
    for label in summary["shards_missing"]:
        console.print(f"[yellow]shard {label}[/yellow] has written no summary (not started yet?)")
    groups = summary["settings_groups"]
    if len(groups) > 1:
        shown = "; ".join(f"{key}: {', '.join(folders[:3])}{' ...' if len(folders) > 3 else ''}"
                          for key, folders in groups.items())
        console.print(f"[yellow]mixed settings[/yellow]: the face folders were fitted with {len(groups)} different "
                      f"presets or configs ({shown}); refit them with one (--overwrite) to compare them",
                      soft_wrap=True)
    for label in summary["shards_unreadable"]:
        console.print(f"[yellow]shard {label}[/yellow]: its summary file cannot be read (corrupt or cut short); "
                      "re-run that shard (it resumes, keeping its finished faces)")
    for label, run in summary["shards"].items():
        if not run["complete"]:
            console.print(f"[yellow]shard {label}[/yellow] has not finished ({run['images']} of "
                          f"{run['images_planned']} images): still running, or killed (re-run it: it resumes)")


@main.group()
def presets() -> None:
    """The fitting presets (stage schedules and weights)."""


@presets.command("show")
@click.argument("name", metavar="NAME", type=click.Choice(PRESET_CHOICES))
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="TOML file merged over the preset, as `facefit fit --config` does.")
def presets_show(name, config) -> None:
    """Print preset NAME, merged with --config, as TOML (save it, edit it, pass it back with --config and the
    same --preset: the file names its preset, and a config naming another is refused)."""
    from fitter.app.toml_text import toml_text

    click.echo(toml_text(_preset(name, config)), nl=False)


@main.command()
def doctor() -> None:
    """Say which detectors, parsers, renderers and weights are available here."""
    from fitter.app.doctor import diagnose

    report = diagnose()
    table = Table(title="facefit doctor")
    table.add_column("component")
    table.add_column("status")
    table.add_column("detail", overflow="fold")  # paths and URLs whole, never cut to "..."
    for row in report:
        colour = {"ok": "green", "missing": "yellow", "error": "red"}.get(row["status"], "white")
        table.add_row(row["component"], f"[{colour}]{row['status']}[/{colour}]", row["detail"])
    Console().print(table)


@main.group()
def bench() -> None:
    """Benchmarks that print figures: synthetic ground truth, renderer speed."""


@bench.command("synthetic")
@click.option("--n", "count", default=50, show_default=True, type=click.IntRange(1, 10000))
@click.option("--seed", default=0, show_default=True)
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--appearance", default="clean", show_default=True, type=click.Choice(["clean", "wild"]),
              help="clean: the fitter's own image model; wild: skin texture, specular, shadows, hair, occluders, "
                   "photo backgrounds and camera effects (docs/benchmark.md).")
@click.option("--preset", default="default", show_default=True, type=click.Choice(PRESET_CHOICES))
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--ablation", is_flag=True, help="Run every fitting configuration on the same faces (ablation.json).")
@click.option("--rows", help="With --ablation: comma-separated row names to run (default: all), e.g. "
                             "landmarks,fast,default,vfx.")
@click.option("--size", default=512, show_default=True, type=click.IntRange(64, 4096),
              help="Rendered image size in pixels.")
def bench_synthetic(count, seed, out_dir, appearance, preset, config, ablation, rows, size) -> None:
    """Render random ICT faces with known geometry, fit them from pixels, write bench.json."""
    from fitter.bench.synthetic import ABLATION_ROWS, run_ablation, run_synthetic

    specs = None
    if ablation:
        specs = ABLATION_ROWS
        if rows:
            wanted = [r.strip() for r in rows.split(",") if r.strip()]
            unknown = sorted(set(wanted) - {r["name"] for r in ABLATION_ROWS})
            if unknown:
                raise click.UsageError(f"--rows: unknown ablation rows {unknown}; known: "
                                       f"{[r['name'] for r in ABLATION_ROWS]}")
            specs = [r for r in ABLATION_ROWS if r["name"] in wanted]
    elif rows:
        raise click.UsageError("--rows selects ablation rows; add --ablation")
    settings = None if ablation else _preset(preset, config)
    with Progress(TextColumn("[bold]{task.fields[label]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        advance = _phase_bars(progress, lambda name: f"{appearance} faces rendered + detected" if name == "render"
                              else f"fitted: {name}")

        if ablation:
            result = run_ablation(out_dir, count=count, seed=seed, size=size, config=config, rows=specs,
                                  appearance=appearance, progress=advance)
        else:
            result = run_synthetic(out_dir, count=count, seed=seed, preset=settings, size=size,
                                   appearance=appearance, progress=advance)
    tables = result["rows"] if ablation else [{"name": result["config"]["preset"], "cases": result["cases"]}]
    for table in tables:  # a face whose fit ended non-finite is left out of the medians: say which and why
        for case in table["cases"]:
            if case.get("fitted") is False:
                console.print(f"[yellow]warning:[/] {table['name']}: case {case['index']} was not fitted "
                              f"({case['error']}); it is left out of the medians (bench.json: \"fitted\": false)")
    if ablation:
        summary = [{k: v for k, v in row.items() if k != "cases"} for row in result["rows"]]
        console.print_json(json.dumps({"appearance": appearance, "rows": summary}))
    else:
        console.print_json(json.dumps({"n": result["n"], "appearance": appearance, "aggregate": result["aggregate"]}))


@bench.command("video")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--preset", default="default", show_default=True, type=click.Choice(PRESET_CHOICES))
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--n", "count", default=3, show_default=True, type=click.IntRange(1, 1000), help="Clips (or scenes).")
@click.option("--seconds", default=2.0, show_default=True, type=click.FloatRange(0.1, 600), help="Clip length.")
@click.option("--fps", default=25.0, show_default=True, type=click.FloatRange(1, 240), help="Clip frame rate.")
@click.option("--seed", default=0, show_default=True)
@click.option("--size", default=256, show_default=True, type=click.IntRange(64, 4096), help="Frame size (pixels).")
@click.option("--appearance", default="clean", show_default=True, type=click.Choice(["clean", "wild"]))
@click.option("--no-independent", is_flag=True, help="Skip fitting every frame as a separate photo.")
@click.option("--multiview", is_flag=True, help="Multi-view captures instead of clips (multiview.json).")
@click.option("--cameras", type=click.IntRange(2, 8), help="--multiview: cameras per rig (default: 3-5).")
@click.option("--instants", default=3, show_default=True, type=click.IntRange(1, 100),
              help="--multiview: head poses seen by the rig.")
@click.option("--pose-start", is_flag=True, help="Starting head rotation error of single photos per rotation "
                                                 "source, --n faces (pose_start.json).")
def bench_video(out_dir, preset, config, count, seconds, fps, seed, size, appearance, no_independent, multiview,
                cameras, instants, pose_start) -> None:
    """Fit synthetic clips of known geometry (video.json): identity, per-frame error, jitter, jaw lag, blinks."""
    from fitter.bench.video import run_multiview_bench, run_pose_start, run_video_bench

    if multiview and pose_start:
        raise click.UsageError("--multiview and --pose-start are separate benchmarks; choose one")
    settings = _preset(preset, config)
    with Progress(TextColumn("[bold]{task.fields[label]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        advance = _phase_bars(progress)

        if pose_start:
            result = run_pose_start(out_dir, settings, count=count, seed=seed, size=size, appearance=appearance,
                                    progress=advance)
        elif multiview:
            result = run_multiview_bench(out_dir, settings, count=count, cameras=cameras, instants=instants,
                                         seed=seed, size=size, appearance=appearance, progress=advance)
        else:
            result = run_video_bench(out_dir, settings, count=count, seconds=seconds, fps=fps, seed=seed, size=size,
                                     appearance=appearance, independent=not no_independent, progress=advance)
    console.print_json(json.dumps({"config": result["config"], "aggregate": result["aggregate"]}))


def _bench_presets(presets: str, config: Path | None) -> list[str]:
    """The comma-separated preset names of a bench command, each checked with the config before any image is read."""
    names = [p.strip() for p in presets.split(",") if p.strip()]
    if not names:
        raise click.BadParameter(f"{presets!r} names no preset; e.g. fast,default", param_hint="--presets")
    for name in names:
        _preset(name, config)
    return names


def _check_device(device: str) -> None:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise click.UsageError("--device cuda: no CUDA device is available to torch; use --device cpu")


@bench.command("photos")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--presets", default="fast,default", show_default=True,
              help="Comma-separated presets; the first is the reference the others are compared with.")
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--recursive", is_flag=True, help="Search folders recursively.")
def bench_photos(inputs, out_dir, presets, config, recursive) -> None:
    """Fit real photos with several presets; write agreement.json (part IoU, NME, suspect flags)."""
    from fitter.bench.agreement import run_agreement
    from fitter.io import InputError, discover_inputs

    names = _bench_presets(presets, config)
    try:
        paths = discover_inputs(list(inputs), recursive=recursive).images
    except InputError as exc:
        raise click.UsageError(str(exc)) from exc
    with Progress(TextColumn("[bold]photos"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=console, transient=True) as progress:
        task = progress.add_task("", total=None)
        result = run_agreement(paths, out_dir, names, config,
                               on_face=lambda row: progress.update(task, advance=1, description=Path(row["input"]).name))
    console.print_json(json.dumps({"faces": result["faces"], "summary": {
        k: {m: v for m, v in s.items() if not m.startswith("worse_than")} for k, s in result["summary"].items()}}))
    for fail in result["failed"]:
        console.print(f"[red]failed[/red] {escape(fail['reason'])}", soft_wrap=True)


@bench.command("consistency")
@click.argument("sources", nargs=-1, required=True)
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--presets", default="fast,default", show_default=True, help="Comma-separated presets.")
@click.option("--frames", default=8, show_default=True, type=click.IntRange(2, 1000),
              help="Evenly spaced frames per video (folders: every image).")
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def bench_consistency(sources, out_dir, presets, frames, config) -> None:
    """One person per clip or folder: fit each frame alone, compare identity within and between people."""
    from fitter.bench.consistency import run_consistency
    from fitter.io import is_video_path

    names = _bench_presets(presets, config)
    for source in map(Path, sources):
        if not source.exists():
            raise click.UsageError(f"{source}: no such clip or folder")
        if not (source.is_dir() or is_video_path(source)):
            raise click.UsageError(f"{source}: neither a video nor a folder of photos; give one person's clip or "
                                   "a folder of that person's photos")
    with Progress(TextColumn("[bold]frames"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=console, transient=True) as progress:
        task = progress.add_task("", total=frames * len(sources))
        result = run_consistency([Path(s) for s in sources], out_dir, names, frames, config,
                                 on_frame=lambda row: progress.update(task, advance=1, description=row["person"]))
    console.print_json(json.dumps(result["summary"]))
    for line in result["notes"]:
        console.print(f"[yellow]{escape(line)}[/yellow]", soft_wrap=True)


@bench.command("render")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]))
@click.option("--renderer", default="auto", show_default=True, type=click.Choice(["auto", "builtin", "pytorch3d"]))
@click.option("--repeats", default=15, show_default=True, type=click.IntRange(3, 1000))
def bench_render(out_dir, device, renderer, repeats) -> None:
    """Time rasterize + interpolate + SH shading forward+backward (writes render.json)."""
    from fitter.bench.render_bench import run_render_bench
    from fitter.render.raster import resolve_backend

    _check_device(device)
    try:
        resolve_backend(renderer, device)
    except ImportError as exc:
        raise click.UsageError(f"--renderer {renderer}: {exc}") from exc
    result = run_render_bench(Path(out_dir), device=device, backend=renderer, repeats=repeats)
    console.print_json(json.dumps(result))


@main.group()
def critic() -> None:
    """The perceptual shape critic: train it from a seed, measure it on faces it never saw (docs/critic.md)."""


def _critic_progress(progress: Progress):
    """A progress callback with one bar per phase; the training bar shows the running held-out accuracy."""
    bars = _phase_bars(progress)

    def advance(phase: str, done: int, total: int, info: dict) -> None:
        status = ""
        accuracy = info.get("accuracy")
        if isinstance(accuracy, dict):
            status = "held-out " + " ".join(f"{k[:4]} {v:.2f}" for k, v in accuracy.items())
            status += f" auc {info.get('auc', float('nan')):.2f}"
        bars(phase, done, total, status)

    return advance


def _phase_bars(progress: Progress, label: Callable[[str], str] = str) -> Callable[..., None]:
    """``advance(name, done, total, status="")``: one bar per phase name, added on its first call (``label``
    names the bar; ``status`` fills a ``{task.fields[status]}`` column when the bar has one)."""
    tasks: dict[str, int] = {}

    def advance(name: str, done: int, total: int, status: str = "") -> None:
        if name not in tasks:
            tasks[name] = progress.add_task("", total=total, label=label(name), status="")
        progress.update(tasks[name], completed=done, total=total, **({"status": status} if status else {}))

    return advance


def _critic_bar() -> Progress:
    return Progress(TextColumn("[bold]{task.fields[label]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("{task.fields[status]}"), console=console, transient=True)


@critic.command("train")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for critic_shape.npz and its card critic_shape.json.")
@click.option("--seed", default=1000, show_default=True, type=click.IntRange(1000, 1009),
              help="Training photos come from this seed, held-out ones from seed + 1 (seeds 1000-1009 are the "
                   "critic's; benchmarks use 0-2).")
@click.option("--minutes", type=click.FloatRange(0.1, None),
              help="Wall-clock cap of the training steps (the card records how many ran).")
@click.option("--steps", type=click.IntRange(1, None), help="Optimiser steps (default: the recipe's).")
@click.option("--photos", type=click.IntRange(2, 100000), help="Training photos in the pool (default: the recipe's).")
@click.option("--heldout-photos", type=click.IntRange(2, 100000), help="Held-out photos (default: the recipe's).")
@click.option("--fit-photos", type=click.IntRange(0, 100000),
              help="Photos whose `fast` fits become negatives (default: the recipe's; 0: none).")
@click.option("--descent-photos", type=click.IntRange(0, 100000),
              help="Photos per adversarial round (critic descended from the truth; 0: none).")
@click.option("--exploit-photos", type=click.IntRange(0, 100000),
              help="Photos per exploit round (fitted with the `critic` preset and the critic being trained; "
                   "default 0: none).")
@click.option("--mined-margin-floor", type=click.FloatRange(0, None),
              help="Mined negatives ask at least this many millimetres' score gap (default 0: the graded margin).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Photo pool cache (default $FACEFIT_CACHE/critic_pool or ~/.cache/facefit/critic_pool).")
def critic_train(out_dir, seed, minutes, steps, photos, heldout_photos, fit_photos, descent_photos, exploit_photos,
                 mined_margin_floor, cache_dir) -> None:
    """Train the critic from a seed; writes OUT/critic_shape.npz and OUT/critic_shape.json."""
    from dataclasses import replace

    from fitter.bench.critic import run_train
    from fitter.critic.train import Recipe

    recipe = Recipe(seed=seed)
    changes = {k: v for k, v in {"steps": steps, "photos": photos, "heldout_photos": heldout_photos,
                                 "mined_margin_floor_mm": mined_margin_floor}.items() if v is not None}
    mining = {name: dict(cfg) for name, cfg in recipe.mining.items()}
    for name, count in (("fits", fit_photos), ("descent", descent_photos), ("exploits", exploit_photos)):
        if count is not None:
            mining[name]["photos"] = count
    recipe = replace(recipe, mining=mining, **changes)
    with _critic_bar() as progress:
        card = run_train(out_dir, recipe, minutes, cache_dir, _critic_progress(progress))
    held = card["heldout"]
    console.print_json(json.dumps({"weights": str(Path(out_dir) / card["weights_file"]), "sha256": card["sha256"],
                                   "steps": card["steps_run"], "heldout_accuracy": held["accuracy"],
                                   "auc": held["auc"], "accuracy_other_photo": held.get("accuracy_other_photo")}))


@critic.command("eval")
@click.option("--n", "count", default=200, show_default=True, type=click.IntRange(1, 10000),
              help="Photos of the seed (ranking pairs and descents from the truth on all of them).")
@click.option("--seed", default=1002, show_default=True, type=click.IntRange(0, None),
              help="A seed the critic never trained on (1002 is reserved for this).")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--weights", default="critic_shape.npz", show_default=True,
              help="Critic weights: the shipped asset name or a file written by `facefit critic train`.")
@click.option("--preset", default="critic", show_default=True, type=click.Choice(PRESET_CHOICES),
              help="The preset whose critic stage is descended and whose fits are checked for exploitation.")
@click.option("--fits", type=click.IntRange(0, 10000), help="Fit only the first N photos (default: all of them).")
@click.option("--descents", type=click.IntRange(0, 10000), help="Descend from the truth on the first N photos "
                                                                "(default: all).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), help="Photo pool cache.")
def critic_eval(count, seed, out_dir, weights, preset, fits, descents, cache_dir) -> None:
    """Measure the critic on faces it never saw; writes OUT/critic.json (and critic_cases.json)."""
    from fitter.bench.critic import run_eval, training_seeds
    from fitter.critic.weights import CriticWeightsError, load_critic

    try:
        _, card = load_critic(weights)
    except CriticWeightsError as exc:
        raise click.UsageError(str(exc)) from exc
    used = training_seeds(card)
    if seed in used:
        raise click.UsageError(f"--seed {seed}: the critic {weights} trained on seeds {sorted(used)}; "
                               "measure it on another seed (1002 is reserved for this)")
    with _critic_bar() as progress:
        result = run_eval(out_dir, count, seed, weights, preset, fits, descents, cache_dir,
                          _critic_progress(progress))
    console.print_json(json.dumps(result))


if __name__ == "__main__":  # pragma: no cover
    main()
