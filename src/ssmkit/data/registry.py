"""Every task by name. `get_task(name, data_dir=None, **options) -> Task`.

Each entry maps a task name to the function that builds it; the function's keyword arguments are the task's options
(an unknown option is a TypeError from Python itself, re-raised here as a ValueError naming the valid ones).
Modules are imported when their task is asked for, so a missing optional dependency only affects its own tasks.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from ssmkit.data.base import Task

# task name -> (module, builder function name). Builders take (data_dir=None, **options) and return a Task.
TASKS: dict[str, tuple[str, str]] = {
    # forecasting, Informer protocol (data/forecast.py)
    "etth1": ("ssmkit.data.forecast", "etth1_task"),
    "etth2": ("ssmkit.data.forecast", "etth2_task"),
    "ettm1": ("ssmkit.data.forecast", "ettm1_task"),
    "ettm2": ("ssmkit.data.forecast", "ettm2_task"),
    "weather": ("ssmkit.data.forecast", "weather_task"),
    "exchange_rate": ("ssmkit.data.forecast", "exchange_rate_task"),
    "national_illness": ("ssmkit.data.forecast", "national_illness_task"),
    # UCR / UEA time-series classification, .ts files (data/ucr.py)
    "ucr": ("ssmkit.data.ucr", "ucr_task"),
    # long-range synthetic tasks generated on the fly, no files (data/synthetic.py)
    "copying": ("ssmkit.data.synthetic", "copying_task"),
    "selective_copying": ("ssmkit.data.synthetic", "selective_copying_task"),
    "adding": ("ssmkit.data.synthetic", "adding_task"),
    # raw audio: Speech Commands (data/speech.py)
    "sc10": ("ssmkit.data.speech", "sc10_task"),
    "sc35": ("ssmkit.data.speech", "sc35_task"),
    "espeak_digits": ("ssmkit.data.espeak_digits", "espeak_digits_task"),
    # HiPPO online function approximation, generated (data/function_approx.py)
    "function_approx": ("ssmkit.data.function_approx", "function_approx_task"),
    # pixel-level images (data/images.py); LRA Image = scifar_gray
    "smnist": ("ssmkit.data.images", "smnist_task"),
    "psmnist": ("ssmkit.data.images", "psmnist_task"),
    "scifar": ("ssmkit.data.images", "scifar_task"),
    "scifar_gray": ("ssmkit.data.images", "scifar_gray_task"),
    # Long Range Arena (data/text.py, listops.py, retrieval.py, pathfinder.py); LRA Image = scifar_gray
    "lra_text": ("ssmkit.data.text", "imdb_task"),
    "listops": ("ssmkit.data.listops", "listops_task"),
    "listops_synthetic": ("ssmkit.data.listops", "listops_synthetic_task"),
    "lra_retrieval": ("ssmkit.data.retrieval", "aan_task"),
    "pathfinder": ("ssmkit.data.pathfinder", "pathfinder_task"),
    "pathx": ("ssmkit.data.pathfinder", "pathx_task"),
    "pathfinder_synthetic": ("ssmkit.data.pathfinder", "pathfinder_synthetic_task"),
}


def task_names() -> list[str]:
    return sorted(TASKS)


def get_task(name: str, data_dir: Any = None, **options: Any) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(task_names())}")
    module, fn_name = TASKS[name]
    builder = getattr(importlib.import_module(module), fn_name)
    params = inspect.signature(builder).parameters
    has_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    unknown = sorted(set(options) - set(params)) if not has_var_kw else []
    if unknown:
        valid = [p for p in params if p != "data_dir"]
        raise ValueError(f"task {name!r} has no option(s) {unknown}; valid options: {valid}")
    if "data_dir" in params:
        options["data_dir"] = data_dir
    return builder(**options)
