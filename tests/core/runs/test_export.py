import io

import pandas as pd

from core.runs.export import safe_csv


def test_formula_cells_are_escaped_numbers_kept(tmp_path):
    df = pd.DataFrame({"patient_id": ["=HYPERLINK(\"x\")", "+1+2", "-cmd", "@SUM(A1)", "ok", "-1.5"],
                       "risk": [0.1, -0.2, 0.3, 0.4, 0.5, 0.6], "=evil": [1, 2, 3, 4, 5, 6]})
    path = safe_csv(df, tmp_path / "x.csv")
    back = pd.read_csv(path, dtype={"patient_id": str})
    assert back["patient_id"].tolist() == ["'=HYPERLINK(\"x\")", "'+1+2", "'-cmd", "'@SUM(A1)", "ok", "-1.5"]
    assert back["risk"].tolist() == [0.1, -0.2, 0.3, 0.4, 0.5, 0.6]          # numbers stay numbers
    assert "'=evil" in back.columns
    assert safe_csv(df.head(1)).startswith("patient_id,risk")


def test_tab_and_carriage_return_cells_are_escaped_even_before_a_number():
    df = pd.DataFrame({"note": ["\t=cmd()", "\r=1+1", "\t-1", "\r5", " =ok", "-1.5", "+2", "-inf"]})
    back = pd.read_csv(io.StringIO(safe_csv(df)), dtype=str, keep_default_na=False)
    # a CR becomes a newline (quoted by the writer), so no cell can start a new row
    assert back["note"].tolist() == ["'\t=cmd()", "'\n=1+1", "'\t-1", "'\n5", " =ok", "-1.5", "+2", "'-inf"]


def test_carriage_return_inside_a_cell_cannot_start_a_new_row():
    text = safe_csv(pd.DataFrame({"id": ["ok\r=HYPERLINK(1)", "a\r\nb"], "risk": [0.1, 0.2]}))
    assert "\r" not in text
    back = pd.read_csv(io.StringIO(text))
    assert back["id"].tolist() == ["ok\n=HYPERLINK(1)", "a\nb"] and back["risk"].tolist() == [0.1, 0.2]


def test_negative_numbers_stay_numbers_in_numeric_and_mixed_columns():
    df = pd.DataFrame({"risk": [-1.5, 0.25], "n": [-3, 4], "mixed": [-1.5, "-cmd"], "flag": [True, False]})
    text = safe_csv(df)
    assert text.splitlines() == ["risk,n,mixed,flag", "-1.5,-3,-1.5,True", "0.25,4,'-cmd,False"]
    back = pd.read_csv(io.StringIO(text))
    assert back["risk"].tolist() == [-1.5, 0.25] and back["n"].tolist() == [-3, 4]


def test_index_labels_are_escaped_when_the_index_is_written():
    df = pd.DataFrame({"risk": [0.1, 0.2]}, index=pd.Index(["=HYPERLINK(1)", "@x"], name="-id"))
    assert safe_csv(df, index=True).splitlines() == ["'-id,risk", "'=HYPERLINK(1),0.1", "'@x,0.2"]
    assert safe_csv(pd.DataFrame({"risk": [0.1]}, index=[-1]), index=True).splitlines() == [",risk", "-1,0.1"]


def test_unwritable_path_is_a_core_error(tmp_path):
    import pytest

    from core.exceptions import CoreError
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(CoreError, match="is an existing folder"):
        safe_csv(pd.DataFrame({"a": [1]}), tmp_path)
    with pytest.raises(CoreError, match="which is a file, not a folder"):
        safe_csv(pd.DataFrame({"a": [1]}), tmp_path / "a_file" / "x.csv")
