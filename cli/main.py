"""The ``facefit`` command: parses options and calls the library (no fitting logic lives here)."""
from __future__ import annotations

import json
import os
import sys
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
PRESET_CHOICES = ("fast", "default", "vfx")


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


class _Refused(click.ClickException):
    """A run that cannot start: one line (``Error: ...``), exit code 2 like a usage error."""

    exit_code = 2


SKIPPED_LINES = 10  # unsupported files named one per line before "... and N more (summary.json)"


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Output folder (one sub-folder per face, plus summary.json).")
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
              help="Observation cache (default $FACEFIT_CACHE or ~/.cache/facefit).")
@click.option("--segmentation", type=click.Choice(["auto", "facer", "landmarks"]),
              help="Part masks for PRDL: facer's FaRL parser, or the weaker landmark masks (default: preset).")
@click.option("--parser", type=click.Choice(["farl/lapa/448", "farl/celebm/448"]), help="facer parser.")
@click.option("--parser-weights", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="facer parser weights file (instead of the torch hub cache).")
@click.option("--renderer", type=click.Choice(["auto", "builtin", "pytorch3d"]),
              help="Rasterizer backend (default: the preset's, auto = pytorch3d on CUDA when installed).")
@click.option("--verbose", is_flag=True, help=f"Keep the detector's native log lines in OUT/{NATIVE_LOG}.")
@click.option("--critic", "critic_switch", default="on", show_default=True, type=click.Choice(["on", "off"]),
              help="off: leave the perceptual shape critic out of every stage (the preset's [critic] weight = 0).")
def fit(inputs, out_dir, preset, config, device, detector, jobs, recursive, largest, resume, cache_dir,
        segmentation, parser, parser_weights, renderer, verbose, critic_switch) -> None:
    """Fit every face in INPUTS (image files, folders or glob patterns)."""
    from fitter.app.batch import BatchOptions, run_batch
    from fitter.common.files import OutputFolderError
    from fitter.io import InputError, discover_inputs

    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise click.UsageError("--device cuda: no CUDA device is available to torch; use --device cpu")
    try:
        found = discover_inputs(list(inputs), recursive=recursive, videos=True)
    except InputError as exc:
        raise click.UsageError(str(exc)) from exc
    paths = found.images
    not_fitted = [{"input": str(v), "reason": f"{v}: video input is not fitted by `facefit fit` yet; extract "
                                             "frames to images (e.g. with ffmpeg) and fit those"}
                  for v in found.videos]
    skipped = [{"input": str(p), "reason": f"{p}: {why}"} for p, why in found.skipped]
    settings = _preset(preset, config)
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
        task = progress.add_task("", total=len(paths))

        def advance(outcome) -> None:
            for face in outcome.faces:
                if face.note:
                    progress.console.print(face.note, markup=False, highlight=False, soft_wrap=True)
            progress.update(task, advance=1, description=Path(outcome.input).name)

        try:
            summary = run_batch(paths, out_dir, options, on_image=advance, extra_failures=not_fitted,
                                skipped_inputs=skipped)
        except OutputFolderError as exc:
            raise _Refused(str(exc)) from exc
    _print_summary(summary, out_dir)
    if summary["fitted"] == 0 and summary["skipped"] == 0:
        sys.exit(1)


def _print_skipped(skipped: list[dict]) -> None:
    for item in skipped[:SKIPPED_LINES]:
        console.print(f"[yellow]skipped[/yellow] {escape(item['reason'])}", soft_wrap=True)
    if len(skipped) > SKIPPED_LINES:
        console.print(f"[yellow]skipped[/yellow] ... and {len(skipped) - SKIPPED_LINES} more files of "
                      f"unsupported types (listed in summary.json under skipped_inputs)")


def _print_summary(summary: dict, out_dir: Path) -> None:
    table = Table()
    for col in ("face folder", "status", "RMSE px", "NME", "s"):
        table.add_column(col, justify="right" if col in ("RMSE px", "NME", "s") else "left")
    for f in summary["faces"]:
        fmt = lambda v, p: "" if v is None else f"{v:.{p}f}"  # noqa: E731
        table.add_row(escape(f["folder"]), f["status"], fmt(f["rmse_px"], 2), fmt(f["nme"], 4), fmt(f["seconds"], 2))
    console.print(table)
    others = len(summary.get("skipped_inputs", []))
    console.print(f"facefit: {summary['fitted']} fitted, {summary['skipped']} skipped, "
                  f"{len(summary['failed'])} failed ({summary['seconds']:.1f} s)"
                  + (f"; {others} file(s) of unsupported types not read" if others else ""), soft_wrap=True)
    for fail in summary["failed"]:
        console.print(f"[red]failed[/red] {escape(fail['reason'])}", soft_wrap=True)
    _print_skipped(summary.get("skipped_inputs", []))
    console.print(f"outputs in {escape(str(out_dir))}/ (summary.json)")


@main.group()
def presets() -> None:
    """The fitting presets (stage schedules and weights)."""


@presets.command("show")
@click.argument("name", metavar="NAME", type=click.Choice(PRESET_CHOICES))
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="TOML file merged over the preset, as `facefit fit --config` does.")
def presets_show(name, config) -> None:
    """Print preset NAME, merged with --config, as TOML (save it, edit it, pass it back with --config)."""
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
    table.add_column("detail")
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
@click.option("--preset", default="default", show_default=True, type=click.Choice(["fast", "default", "vfx"]))
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
        tasks: dict[str, int] = {}

        def advance(name: str, done: int, total: int) -> None:
            if name not in tasks:
                label = f"{appearance} faces rendered + detected" if name == "render" else f"fitted: {name}"
                tasks[name] = progress.add_task("", total=total, label=label)
            progress.update(tasks[name], completed=done)

        if ablation:
            result = run_ablation(out_dir, count=count, seed=seed, size=size, config=config, rows=specs,
                                  appearance=appearance, progress=advance)
        else:
            result = run_synthetic(out_dir, count=count, seed=seed, preset=settings, size=size,
                                   appearance=appearance, progress=advance)
    if ablation:
        summary = [{k: v for k, v in row.items() if k != "cases"} for row in result["rows"]]
        console.print_json(json.dumps({"appearance": appearance, "rows": summary}))
    else:
        console.print_json(json.dumps({"n": result["n"], "appearance": appearance, "aggregate": result["aggregate"]}))


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

    names = [p.strip() for p in presets.split(",") if p.strip()]
    for name in names:
        _preset(name, config)  # every preset and the config checked before any image is read
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

    names = [p.strip() for p in presets.split(",") if p.strip()]
    for name in names:
        _preset(name, config)
    missing = [s for s in sources if not Path(s).exists()]
    if missing:
        raise click.UsageError(f"{missing[0]}: no such clip or folder")
    with Progress(TextColumn("[bold]frames"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=console, transient=True) as progress:
        task = progress.add_task("", total=frames * len(sources))
        result = run_consistency([Path(s) for s in sources], out_dir, names, frames, config,
                                 on_frame=lambda row: progress.update(task, advance=1, description=row["person"]))
    console.print_json(json.dumps(result["summary"]))


@bench.command("render")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]))
@click.option("--renderer", default="auto", show_default=True, type=click.Choice(["auto", "builtin", "pytorch3d"]))
@click.option("--repeats", default=15, show_default=True, type=click.IntRange(3, 1000))
def bench_render(out_dir, device, renderer, repeats) -> None:
    """Time rasterize + interpolate + SH shading forward+backward (writes render.json)."""
    from fitter.bench.render_bench import run_render_bench

    result = run_render_bench(Path(out_dir), device=device, backend=renderer, repeats=repeats)
    console.print_json(json.dumps(result))


@main.group()
def critic() -> None:
    """The perceptual shape critic: train it from a seed, measure it on faces it never saw (docs/critic.md)."""


def _critic_progress(progress: Progress):
    """A progress callback with one bar per phase; the training bar shows the running held-out accuracy."""
    tasks: dict[str, int] = {}

    def advance(phase: str, done: int, total: int, info: dict) -> None:
        if phase not in tasks:
            tasks[phase] = progress.add_task("", total=total, label=phase, status="")
        status = ""
        accuracy = info.get("accuracy")
        if isinstance(accuracy, dict):
            status = "held-out " + " ".join(f"{k[:4]} {v:.2f}" for k, v in accuracy.items())
            status += f" auc {info.get('auc', float('nan')):.2f}"
        progress.update(tasks[phase], completed=done, total=total, **({"status": status} if status else {}))

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
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Photo pool cache (default $FACEFIT_CACHE/critic_pool or ~/.cache/facefit/critic_pool).")
def critic_train(out_dir, seed, minutes, steps, photos, heldout_photos, fit_photos, descent_photos, cache_dir) -> None:
    """Train the critic from a seed; writes OUT/critic_shape.npz and OUT/critic_shape.json."""
    from dataclasses import replace

    from fitter.bench.critic import run_train
    from fitter.critic.train import Recipe

    recipe = Recipe(seed=seed)
    changes = {k: v for k, v in {"steps": steps, "photos": photos, "heldout_photos": heldout_photos}.items()
               if v is not None}
    mining = {name: dict(cfg) for name, cfg in recipe.mining.items()}
    for name, count in (("fits", fit_photos), ("descent", descent_photos)):
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
@click.option("--preset", default="default", show_default=True, type=click.Choice(PRESET_CHOICES),
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
