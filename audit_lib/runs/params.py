"""Parameter files of the runs: one YAML per bureau, and the schedule.

``parameters/bureaus/<code>.yml``, the one list of the city's bureaus::

    code: YZ                 # bureau code, equal to the file name
    name_zh: 渝中
    name_en: Yuzhong
    seq: 1                   # the city's order of its bureaus (reports; the demo city's first N)
    zone: urban_core         # urban_core (主城区), suburban (近郊) or outlying (远郊)
    themes:                  # this bureau's theme parameters (absent: the catalogue's)
      area_line_loss:
        high_loss: 0.06
    notebooks:               # per notebook (by file stem): parameters for this bureau
      operations: {}

A notebook that declares ``theme_params`` gets the bureau's ``themes`` there (the runner sets
it): that is the only road of a bureau's theme parameters into a detection run.

``parameters/schedule.yml`` is read by :mod:`audit_lib.runs.scheduler`.

Every mapping handed to a notebook is checked against ``papermill.inspect_notebook()``: a key
the notebook does not declare, or a value of the wrong type for the declared annotation,
raises :class:`~audit_lib.errors.ConfigError` naming the file and the key.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from audit_lib.data.schema import BUREAU, CUSTOMERS
from audit_lib.errors import ConfigError
from audit_lib.themes.catalogue import checked_params

PARAMETERS_DIR = Path("parameters")
BUREAU_KEYS = frozenset({"code", "name_zh", "name_en", "seq", "zone", "themes", "notebooks"})
ZONES = ("urban_core", "suburban", "outlying")


@dataclass(frozen=True)
class BureauParams:
    """One bureau's parameter file.

    Attributes
    ----------
    code
        Bureau code (区供电局代码), also the file name.
    name_zh, name_en
        Chinese and English names.
    seq
        The city's order of its bureaus (1 first; ``None``: after those that have one).
    zone
        One of :data:`ZONES` (``None``: not said).
    themes
        Theme id → parameters of this bureau, checked against the catalogue.
    notebooks
        Notebook stem → parameters that apply to this bureau.
    source
        The file it was read from (for messages).
    """

    code: str
    name_zh: str
    name_en: str
    seq: int | None = None
    zone: str | None = None
    themes: dict[str, dict[str, float | int | str]] = field(default_factory=dict)
    notebooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = "<memory>"

    def for_notebook(self, notebook: str | Path) -> dict[str, Any]:
        """Parameters of this bureau for ``notebook`` (matched by file stem)."""
        return dict(self.notebooks.get(Path(notebook).stem, {}))


def read_yaml(path: Path) -> Any:
    """Read a YAML file; a missing or malformed file raises ConfigError naming it."""
    if not path.is_file():
        raise ConfigError(f"parameter file not found: {path}")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc


def load_bureau(code: str, parameters_dir: Path | str = PARAMETERS_DIR) -> BureauParams:
    """Load and check ``<parameters_dir>/bureaus/<code>.yml``.

    Raises
    ------
    ConfigError
        If the file is missing or malformed, has unknown keys, or its code differs from the
        file name.
    """
    path = Path(parameters_dir) / "bureaus" / f"{code}.yml"
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with keys {sorted(BUREAU_KEYS)}")
    unknown = sorted(set(data) - BUREAU_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} (allowed: {sorted(BUREAU_KEYS)})")
    for key in ("code", "name_zh", "name_en"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ConfigError(f"{path}: key {key!r} must be a non-empty string")
    if data["code"] != code:
        raise ConfigError(f"{path}: key 'code' is {data['code']!r}, expected {code!r}")
    seq = data.get("seq")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int) or seq < 1):
        raise ConfigError(f"{path}: key 'seq' must be a positive whole number, got {seq!r}")
    if data.get("zone") not in (None, *ZONES):
        raise ConfigError(f"{path}: key 'zone' must be one of {', '.join(ZONES)}")
    themes = data.get("themes") or {}
    if not isinstance(themes, dict) or not all(isinstance(v, dict) for v in themes.values()):
        raise ConfigError(f"{path}: key 'themes' must map theme ids to parameter mappings")
    checked = {
        str(t): checked_params(str(t), p, source=f"{path}: themes") for t, p in themes.items()
    }
    notebooks = data.get("notebooks") or {}
    if not isinstance(notebooks, dict) or not all(
        isinstance(v, dict) or v is None for v in notebooks.values()
    ):
        raise ConfigError(f"{path}: key 'notebooks' must map notebook names to mappings")
    return BureauParams(
        code=code,
        name_zh=data["name_zh"],
        name_en=data["name_en"],
        seq=seq,
        zone=data.get("zone"),
        themes=checked,
        notebooks={str(k): dict(v or {}) for k, v in notebooks.items()},
        source=str(path),
    )


def city_bureaus(parameters_dir: Path | str = PARAMETERS_DIR) -> list[BureauParams]:
    """Every bureau's parameter file, in the city's order (``seq``; bureaus without one
    last, by code).

    Raises
    ------
    ConfigError
        If a file is malformed or two bureaus share a ``seq``.
    """
    bureaus = sorted((load_bureau(c, parameters_dir) for c in list_bureaus(parameters_dir)),
                     key=lambda b: (b.seq is None, b.seq or 0, b.code))  # fmt: skip
    for before, after in itertools.pairwise(bureaus):
        if before.seq is not None and before.seq == after.seq:
            raise ConfigError(f"{after.source}: seq {after.seq} is also {before.source}'s")
    return bureaus


def list_bureaus(parameters_dir: Path | str = PARAMETERS_DIR) -> list[str]:
    """Codes of every bureau that has a parameter file, sorted."""
    folder = Path(parameters_dir) / "bureaus"
    if not folder.is_dir():
        raise ConfigError(f"no bureau parameter folder: {folder}")
    return sorted(p.stem for p in folder.glob("*.yml"))


def bureaus_in_mart(mart: Path | str) -> list[str]:
    """Bureau codes that have customers in the mart (``customers/bureau=<code>`` folders)."""
    folder = Path(mart) / CUSTOMERS.name
    if not folder.is_dir():
        raise ConfigError(f"mart has no {CUSTOMERS.name} table: {folder}")
    return sorted(p.name.split("=", 1)[1] for p in folder.glob(f"{BUREAU}=*") if p.is_dir())


def resolve_bureaus(
    selection: str | list[str],
    parameters_dir: Path | str = PARAMETERS_DIR,
    *,
    mart: Path | str | None = None,
) -> list[str]:
    """Turn ``all`` or ``B1,B2`` (or a list) into bureau codes that have parameter files.

    With a ``mart``, ``all`` means every bureau that has a parameter file and customers in the
    mart (a demo mart holds a few bureaus only).

    Raises
    ------
    ConfigError
        If a code has no parameter file, or the selection is empty.
    """
    known = list_bureaus(parameters_dir)
    if isinstance(selection, str):
        if selection.strip().lower() == "all":
            chosen = known
            if mart is not None:
                present = set(bureaus_in_mart(mart))
                chosen = [c for c in known if c in present]
        else:
            chosen = [c.strip() for c in selection.split(",") if c.strip()]
    else:
        chosen = list(selection)
    if not chosen:
        raise ConfigError("no bureau selected (use --bureau all or --bureau B1,B2)")
    missing = [c for c in chosen if c not in known]
    if missing:
        folder = Path(parameters_dir) / "bureaus"
        raise ConfigError(
            f"unknown bureau {missing[0]!r}: no file {folder / (missing[0] + '.yml')}"
        )
    return list(dict.fromkeys(chosen))


def _annotated_names(path: str) -> dict[str, str]:
    """Annotated assignments of the ``parameters`` cell, read with ``ast``."""
    import nbformat  # 1.3 s to import: only when a notebook is read

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            try:
                tree = ast.parse(cell.source)
            except SyntaxError as exc:
                raise ConfigError(f"{path}: parameters cell is not valid Python: {exc}") from exc
            return {
                node.target.id: ast.unparse(node.annotation)
                for node in tree.body
                if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
            }
    return {}


@lru_cache(maxsize=64)
def _inspect_cached(path: str, mtime_ns: int) -> dict[str, dict[str, Any]]:
    import papermill

    declared = dict(papermill.inspect_notebook(path))
    # papermill's pattern misses annotations such as ``str | None``: add them from the AST.
    for name, annotation in _annotated_names(path).items():
        declared.setdefault(
            name, {"name": name, "inferred_type_name": annotation, "default": "", "help": ""}
        )
    return declared


def notebook_parameters(notebook: Path | str) -> dict[str, dict[str, Any]]:
    """The notebook's declared parameters, as ``papermill.inspect_notebook()`` reports them."""
    path = Path(notebook)
    if not path.is_file():
        raise ConfigError(f"notebook not found: {path}")
    return _inspect_cached(str(path.resolve()), path.stat().st_mtime_ns)


def check_parameters(
    notebook: Path | str, parameters: Mapping[str, Any], *, source: str = "<parameters>"
) -> None:
    """Check ``parameters`` against the notebook's ``parameters`` cell.

    Raises
    ------
    ConfigError
        Naming ``source`` and the key, if a key is not declared by the notebook or a value
        does not match the declared annotation.
    """
    declared = notebook_parameters(notebook)
    name = Path(notebook).name
    for key, value in parameters.items():
        if key not in declared:
            raise ConfigError(
                f"{source}: unknown parameter {key!r} for notebook {name} "
                f"(declared: {', '.join(sorted(declared)) or 'none'})"
            )
        type_name = str(declared[key].get("inferred_type_name") or "None")
        if not matches_type(value, type_name):
            raise ConfigError(
                f"{source}: parameter {key!r} of notebook {name} must be {type_name}, "
                f"got {type(value).__name__} {value!r}"
            )


def _split_top(text: str, sep: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


_SCALARS: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
    "tuple": (list, tuple),
}


def matches_type(value: Any, type_name: str) -> bool:
    """Whether a YAML value fits a parameter annotation such as ``float`` or ``list[str]``.

    Annotations this function does not know (``Any``, ``Path``, …) and unannotated parameters
    (papermill reports ``None``) accept any value. ``bool`` is never accepted for ``int`` or
    ``float``.
    """
    text = type_name.strip()
    if text in ("None", "", "Any", "object"):
        return True
    return _matches(value, text)


def _matches(value: Any, text: str) -> bool:
    text = text.strip().replace("typing.", "")
    alternatives = _split_top(text, "|")
    if len(alternatives) > 1:
        return any(_matches(value, alt) for alt in alternatives)
    if text == "None":
        return value is None
    head, _, rest = text.partition("[")
    args = _split_top(rest[:-1], ",") if rest.endswith("]") else []
    head = head.strip()
    if head == "Optional" and args:
        return value is None or _matches(value, args[0])
    if head == "Union" and args:
        return any(_matches(value, a) for a in args)
    base = _SCALARS.get(head.lower() if head in ("List", "Dict", "Tuple") else head)
    if base is None:
        return True
    if isinstance(value, bool) and bool not in base:
        return False
    if not isinstance(value, base):
        return False
    if isinstance(value, list) and head.lower() == "list" and args:
        return all(_matches(v, args[0]) for v in value)
    if isinstance(value, dict) and head.lower() == "dict" and len(args) == 2:
        return all(_matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items())
    return True
