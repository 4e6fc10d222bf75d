"""Stages 5 and 6 of a validation, assemble and summarise: the cohort built from the stages' values, checked as a
whole (labels against patients, duplicate stays), and the report's summary and row accounting.
"""
from __future__ import annotations

from dataclasses import replace

import pandas as pd

from core.config import DataConfig
from core.data.cohort import Cohort, make_cohort
from core.data.duplicates import check_duplicate_stays, find_duplicate_stays
from core.data.read_limits import RawTable
from core.data.stages.labels import check_labels_vs_patients, hour_label_counts
from core.data.stages.read import Progress
from core.data.stages.values import CleanRows, Labels, LongRows
from core.data.validation import ValidationReport, show_value
from core.exceptions import InternalError

__all__ = ["assemble_cohort", "summarise"]


def assemble_cohort(table: RawTable, rows: LongRows, clean: CleanRows, labels: Labels, config: DataConfig,
                    report: ValidationReport, progress: Progress) -> Cohort | None:
    """The cohort of the kept events, static attributes and labels, with the patients' groups; ``None`` after the
    blocking error ``no_rows`` (nothing usable left). The labels are then checked against the patients and the
    stays for duplicates (:func:`core.data.duplicates.check_duplicate_stays`)."""
    if len(clean.events) == 0 and len(clean.static) == 0:
        report.error("no_rows", "No usable rows remain after validation (see the exclusions above).",
                     fix="Fix the problems listed, or check that the right columns were mapped.")
        return None
    cohort = make_cohort(clean.events, clean.static, labels.labels, target=labels.target, source=table.name,
                         report=report, other_outcomes=labels.other_outcomes, hour_labels=labels.hour_labels,
                         onsets=labels.onsets, row_times=clean.hours.row_times if clean.hours is not None else None)
    if rows.groups is not None:
        groups = rows.groups.loc[rows.groups.index.intersection(pd.Index(cohort.patient_ids))]
        cohort = replace(cohort, groups=groups.sort_index())
        sizes = groups.value_counts()
        report.info("group_column", f"Patients grouped by {rows.mapping.group!r}: {len(sizes):,} groups for "
                    f"{len(groups):,} patients (largest: {int(sizes.max()) if len(sizes) else 0:,} patients). The "
                    "split keeps each group on one side; the column is never a feature.")
    if cohort.hour_labels is not None:
        counts = hour_label_counts(cohort)
        report.info("hour_labels", f"Hour labels ({cohort.target!r}): {counts['labelled hours']:,} labelled "
                    f"hours, {counts['positive hours']} positive, {counts['patients with a positive hour']:,} "
                    "patients with a positive hour; the label is never a feature.",
                    count=counts["labelled hours"], unit="hours")
    check_labels_vs_patients(cohort, config, report)
    progress("looking for duplicate stays", 0.85)
    check_duplicate_stays(find_duplicate_stays(cohort.events, cohort.static), report,
                          trainable=cohort.labels is not None, labels=cohort.labels, groups=cohort.groups,
                          group_col=rows.mapping.group)
    return cohort


def summarise(cohort: Cohort, table: RawTable, rows: LongRows, clean: CleanRows, labels: Labels,
              config: DataConfig, report: ValidationReport) -> None:
    """Fill in ``report.rows_used`` and ``report.summary`` (source, format, columns, patients, variables, target,
    hour labels).

    Raises
    ------
    InternalError
        When the rows do not add up (``rows_read != rows_used + sum(rows_excluded)``): a stage used or excluded
        an observation without counting it.
    """
    mapping = rows.mapping
    report.rows_used = int(len(cohort.events)) + clean.static_rows + clean.hour_rows
    excluded = sum(report.rows_excluded.values())
    if report.rows_read != report.rows_used + excluded:
        raise InternalError(f"validation lost count of rows: {report.rows_read:,} read, but {report.rows_used:,} "
                            f"used and {excluded:,} excluded ({report.rows_excluded})")
    hour_summary = hour_label_counts(cohort) if cohort.hour_labels is not None else {}
    if labels.hours_after_onset is not None:
        hour_summary["hours left out (at or after onset)"] = int(labels.hours_after_onset)
    report.summary = {
        "source": table.name,
        "format": f"{table.fmt}, {mapping.layout} layout",
        "columns": f"patient={show_value(mapping.patient)}, time={show_value(mapping.time)}"
                   + (f", variable={show_value(mapping.variable)}, value={show_value(mapping.value)}"
                      if mapping.layout == "long" else ""),
        **({"task": "online (a label per patient-hour)"} if config.task == "online" else {}),
        "patients": cohort.n_patients,
        "rows used": int(len(cohort.events)),
        **({"hours (distinct row times)": len(cohort.row_times)} if cohort.row_times is not None else {}),
        "time-series variables": len(cohort.series_variables),
        "static attributes": len(cohort.static_variables),
        **({f"groups ({mapping.group})": int(cohort.groups.nunique())} if cohort.groups is not None else {}),
        **({"target": cohort.target, "labelled patients": len(cohort.labelled_ids),
            "positives": int(cohort.labels.loc[cohort.labelled_ids].sum()),
            "prevalence": f"{cohort.prevalence:.2%}" if cohort.prevalence is not None else "n/a"}
           if cohort.labels is not None else {"target": "none (exploration only)"}),
        **hour_summary,
    }
