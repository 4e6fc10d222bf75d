"""Parquet files: checked against the inflation cap and the memory limit from their metadata before they are read,
nested columns refused, dictionaries decoded and binary columns read as UTF-8 text.
"""
from __future__ import annotations

import io

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.data.duck_reader import read_with_duckdb
from core.data.read_limits import RawTable, ReadBudget, SAMPLE_ROWS, TableProbe, check_unique_columns, check_width
from core.exceptions import DataReadError
from core.data.validation import clip_text

__all__ = ["read_parquet"]

#: Arrow types that are not one value per cell.
_NESTED = (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list, pa.types.is_struct,
           pa.types.is_map, pa.types.is_union)


def read_parquet(name: str, content: bytes, budget: ReadBudget) -> RawTable:
    """A Parquet file: in memory, or by DuckDB when its rows would be large in memory (see
    :func:`~core.data.duck_reader.read_with_duckdb`)."""
    try:
        pfile = pq.ParquetFile(io.BytesIO(content))
        schema, meta = pfile.schema_arrow, pfile.metadata
        check_width(name, len(schema))
        # Parquet compresses too: refuse before reading what would inflate past the cap.
        inflated = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if max(inflated, meta.num_rows * max(len(schema), 1) * 8) > budget.left:
            budget.refuse(name, "holds")
        nested = [f.name for f in schema if any(test(f.type) for test in _NESTED)]
        if nested:
            raise DataReadError(f"{name}: the Parquet columns {[clip_text(c) for c in nested[:5]]} hold lists or "
                                "records, not one value per cell. Flatten them (one row per value, e.g. "
                                "DataFrame.explode) and export again.")
        # What the rows cost in pandas, text cells at their real size: from the first rows, decoded.
        first = next(pfile.iter_batches(batch_size=SAMPLE_ROWS), None)
        sample = _parquet_frame(name, pa.Table.from_batches([first]) if first is not None else schema.empty_table())
        per_row = sample.memory_usage(deep=True, index=False).sum() / max(len(sample), 1)
        budget.probe(TableProbe(name, rows=meta.num_rows, sample=sample, compact=True))   # even out of core?
        if meta.num_rows * per_row > budget.in_memory_bytes:
            spilled = budget.spill(name, ".parquet")
            spilled.write_bytes(content)
            table = read_with_duckdb(spilled, budget, name, force=True)
            if table is not None:
                return table
        budget.probe(TableProbe(name, rows=meta.num_rows, sample=sample))
        frame = _parquet_frame(name, pfile.read())
    except DataReadError:
        raise
    except (pa.ArrowException, OSError, ValueError, TypeError, IndexError) as err:
        if isinstance(err, MemoryError):
            raise
        raise DataReadError(f"{name}: not a readable Parquet file ({clip_text(err)}). Re-export it, or upload "
                            "a CSV.") from None
    if frame.empty:
        raise DataReadError(f"{name}: the Parquet file has columns {[clip_text(c) for c in frame.columns[:12]]} but "
                            "no rows. Export the data rows too.")
    if not isinstance(frame.index, pd.RangeIndex):
        # A named index (e.g. written from a frame indexed by patient id) is data: keep it as columns.
        named = any(n is not None for n in frame.index.names)
        frame = frame.reset_index(drop=not named)
    check_unique_columns(name, [str(c) for c in frame.columns])
    return RawTable(frame=frame, name=name, fmt="parquet", first_line=None)


def _parquet_frame(name: str, table: pa.Table) -> pd.DataFrame:
    table = pa.table([_plain_column(name, f, table.column(i)) for i, f in enumerate(table.schema)],
                     schema=None, names=table.schema.names, metadata=table.schema.metadata)
    return table.to_pandas()


def _plain_column(name: str, fld: pa.Field, col: pa.ChunkedArray) -> pa.ChunkedArray:
    """A Parquet column as plain values: dictionaries (categoricals) decoded, binary read as UTF-8 text."""
    typ = fld.type
    if pa.types.is_dictionary(typ):
        col, typ = col.cast(typ.value_type), typ.value_type
    if pa.types.is_binary(typ) or pa.types.is_large_binary(typ) or pa.types.is_fixed_size_binary(typ):
        try:
            return col.cast(pa.large_binary()).cast(pa.large_string())
        except pa.ArrowInvalid:
            raise DataReadError(f"{name}: the Parquet column {clip_text(fld.name)!r} holds binary data that is not "
                                "UTF-8 text. Store ids and values as text or numbers, and export again.") from None
    return col
