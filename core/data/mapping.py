"""Match the variables of new data with a run's: exact names, spellings, synonyms, and the user's own mapping.

A run trained on one source (PhysioNet 2012: ``DiasABP``, ``HCT``, ``K``) meets data from another (PhysioNet
2019: ``DBP``, ``Hct``, ``Potassium``; MIMIC-style exports: ``Non Invasive Blood Pressure diastolic``). Scoring
them as they are would treat every renamed variable as never measured. :func:`match_variables` pairs each run
variable with at most one variable of the data, in this order:

1. the user's own pairs (``--map NEW=RUN`` in the CLI, the mapping form on Predict), checked;
2. the same name;
3. the same letters and digits, ignoring case, spaces and punctuation (``heart_rate`` and ``Heart Rate``);
4. the same canonical name in the synonym table (:func:`core.data.plausibility.canonical_name`: the plausibility
   table's names and synonyms plus :data:`core.data.plausibility.NAMES`).

Only unambiguous pairs are made: when two variables of the data share a run variable's canonical name (2019's
``O2Sat`` and ``SaO2`` for a run's ``SpO2``), nothing is guessed; the pair is reported as ambiguous and the
user chooses. When one variable of the data fits several of the run's (2019's ``SBP`` for a 2012 run's
``SysABP`` and ``NISysABP``), it goes to the one that *is* the canonical name (``SysABP``), and the others are
named in the report. Names say nothing about units: a glucose in mmol/L matched with one in mg/dL is still
wrong; the distribution shift of external validation is what catches that.

:func:`apply_mapping` renames the cohort's variables (a new :class:`~core.data.cohort.Cohort`; the uploaded
file is never changed).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from core.data.cohort import Cohort, build_catalogue
from core.data.plausibility import canonical_name
from core.exceptions import CohortError

__all__ = ["VariableMapping", "match_variables", "apply_mapping", "parse_mapping", "HOW"]

#: how a pair was made, in the words shown to the user.
HOW = {"you": "your mapping", "spelling": "same name, other spelling", "synonym": "synonym"}


@dataclass(frozen=True)
class VariableMapping:
    """Pairs of (data variable, run variable) and what could not be decided.

    Attributes
    ----------
    renamed : tuple of (str, str, str)
        ``(name in the data, name in the run, how)``, ``how`` one of ``"you"``, ``"spelling"``, ``"synonym"``.
    ambiguous : tuple of (tuple of str, tuple of str)
        ``(run variables, data variables)`` sharing one canonical name that were left unpaired (more than
        one variable of the data fits); the user maps them.
    also_fit : tuple of (str, tuple of str)
        ``(data variable, other run variables)``: a data variable paired with one run variable that fits
        others too (those stay missing unless the user maps something onto them).
    """

    renamed: tuple = ()
    ambiguous: tuple = ()
    also_fit: tuple = ()

    def as_dict(self) -> dict[str, str]:
        """``{name in the data: name in the run}``: what :func:`apply_mapping` renames (exact names left out)."""
        return {new: old for new, old, _ in self.renamed}

    def lines(self) -> list[str]:
        """One plain line per pair and per undecided group (for a page or the CLI)."""
        out = [f"{new} -> {old} ({HOW[how]})" for new, old, how in self.renamed]
        for runs, data in self.ambiguous:
            out.append(f"not mapped: {' or '.join(data)} could each be the run's {' / '.join(runs)}; choose one "
                       f"(--map {data[0]}={runs[0]})")
        for new, others in self.also_fit:
            out.append(f"{new} could also be the run's {', '.join(others)} (left missing)")
        return out

    def sentence(self) -> str:
        """A summary sentence ("" when nothing was renamed or left undecided)."""
        if not self.renamed and not self.ambiguous:
            return ""
        parts = []
        if self.renamed:
            shown = ", ".join(f"{new} -> {old}" for new, old, _ in self.renamed[:8])
            more = f" and {len(self.renamed) - 8} more" if len(self.renamed) > 8 else ""
            parts.append(f"{len(self.renamed)} variable(s) of these data were matched with the run's: {shown}{more}.")
        if self.ambiguous:
            parts.append(f"{len(self.ambiguous)} could not be matched without a choice: "
                         + "; ".join(f"{' or '.join(d)} for {' / '.join(r)}" for r, d in self.ambiguous) + ".")
        return " ".join(parts)

    def to_dict(self) -> dict:
        """JSON-ready form (saved beside predictions and external-validation results)."""
        return {"renamed": [{"data": new, "run": old, "how": how} for new, old, how in self.renamed],
                "ambiguous": [{"run": list(r), "data": list(d)} for r, d in self.ambiguous],
                "also_fit": [{"data": new, "run": list(o)} for new, o in self.also_fit]}


def parse_mapping(items) -> dict[str, str]:
    """``["DBP=DiasABP", ...]`` (the CLI's ``--map``) as ``{"DBP": "DiasABP"}``.

    Raises
    ------
    CohortError
        An item is not ``NEW=RUN`` with two non-empty names, or one name is mapped twice.
    """
    out: dict[str, str] = {}
    for item in items or ():
        new, sep, old = str(item).partition("=")
        new, old = new.strip(), old.strip()
        if not sep or not new or not old:
            raise CohortError(f"--map {item!r} is not NEW=RUN. Give the variable's name in the new data, '=', and "
                              "its name in the run, e.g. --map DBP=DiasABP (repeat --map for more).")
        if new in out and out[new] != old:
            raise CohortError(f"--map names {new!r} twice ({out[new]!r} and {old!r}); map each variable once.")
        out[new] = old
    return out


def _check_user_map(user_map: dict, data: list, run: list) -> None:
    data_set, run_set = set(data), set(run)
    for new, old in user_map.items():
        if new not in data_set:
            raise CohortError(f"The mapping {new}={old} names {new!r}, which is not a variable of these data. "
                              f"Their variables: {', '.join(sorted(data_set)[:30])}.")
        if old not in run_set:
            raise CohortError(f"The mapping {new}={old} names {old!r}, which is not a variable of the run. "
                              f"The run's variables: {', '.join(sorted(run_set)[:30])}.")
        if old in data_set and old != new:
            raise CohortError(f"The mapping {new}={old} would give these data {old!r} twice: they already have a "
                              f"variable {old!r}. Leave {new!r} unmapped, or rename the data's own {old!r} first.")
    seen: dict[str, str] = {}
    for new, old in user_map.items():
        if old in seen:
            raise CohortError(f"The mapping sends both {seen[old]!r} and {new!r} onto the run's {old!r}; map one "
                              "variable onto each of the run's.")
        seen[old] = new


def _loose(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def match_variables(data_names, run_names, user_map: dict | None = None) -> VariableMapping:
    """Pair the data's variables with the run's (see the module docstring for the order and the rules).

    Parameters
    ----------
    data_names : iterable of str
        The new data's variables (time series and static).
    run_names : iterable of str
        The run's variables.
    user_map : dict ``{data name: run name}``, optional
        The user's own pairs; they win over every automatic match.

    Returns
    -------
    VariableMapping

    Raises
    ------
    CohortError
        The user's mapping names a variable the data or the run do not have, maps two variables onto one,
        or would duplicate a name the data already have.

    Examples
    --------
    >>> m = match_variables(["DBP", "Hct", "HR", "SBP"], ["DiasABP", "HCT", "HR", "SysABP", "NISysABP"])
    >>> m.as_dict()
    {'Hct': 'HCT', 'DBP': 'DiasABP', 'SBP': 'SysABP'}
    """
    data = list(dict.fromkeys(map(str, data_names)))
    run = list(dict.fromkeys(map(str, run_names)))
    user_map = {str(k): str(v) for k, v in (user_map or {}).items()}
    _check_user_map(user_map, data, run)
    renamed = [(new, old, "you") for new, old in user_map.items() if new != old]
    used_data = set(user_map) | (set(data) & set(run))
    done_run = set(user_map.values()) | (set(data) & set(run))
    # spellings: a one-to-one pairing on letters and digits only
    free_data = [d for d in data if d not in used_data]
    for r in [r for r in run if r not in done_run]:
        same = [d for d in free_data if _loose(d) == _loose(r)]
        rivals = [x for x in run if x not in done_run and _loose(x) == _loose(r)]
        if len(same) == 1 and len(rivals) == 1:
            renamed.append((same[0], r, "spelling"))
            used_data.add(same[0])
            done_run.add(r)
            free_data.remove(same[0])
    # synonyms: grouped by canonical name
    groups: dict[str, tuple[list, list]] = {}
    for r in run:
        if r not in done_run and canonical_name(r) is not None:
            groups.setdefault(canonical_name(r), ([], []))[0].append(r)
    for d in free_data:
        key = canonical_name(d)
        if key in groups:
            groups[key][1].append(d)
    ambiguous, also_fit = [], []
    for key, (runs, datas) in groups.items():
        if not datas:
            continue
        if len(datas) > 1:
            ambiguous.append((tuple(runs), tuple(datas)))
            continue
        if len(runs) == 1:
            renamed.append((datas[0], runs[0], "synonym"))
        elif key in runs:
            renamed.append((datas[0], key, "synonym"))
            also_fit.append((datas[0], tuple(r for r in runs if r != key)))
        else:
            ambiguous.append((tuple(runs), tuple(datas)))
    order = {r: i for i, r in enumerate(run)}
    renamed.sort(key=lambda t: ({"you": 0, "spelling": 1, "synonym": 2}[t[2]], order[t[1]]))
    return VariableMapping(renamed=tuple(renamed), ambiguous=tuple(ambiguous), also_fit=tuple(also_fit))


def apply_mapping(cohort: Cohort, mapping: VariableMapping | dict) -> Cohort:
    """``cohort`` with its variables renamed by ``mapping`` (``{data name: run name}`` or a :class:`VariableMapping`).

    A new cohort (the given one and the uploaded file are unchanged); the catalogue is rebuilt. An empty mapping
    returns ``cohort`` itself.
    """
    names = mapping.as_dict() if isinstance(mapping, VariableMapping) else dict(mapping)
    if not names:
        return cohort
    events = cohort.events.copy()
    cats = events["variable"].cat.categories
    events["variable"] = events["variable"].cat.rename_categories([names.get(str(c), str(c)) for c in cats])
    static = cohort.static.rename(columns=names)
    return replace(cohort, events=events, static=static, catalogue=build_catalogue(events, static))
