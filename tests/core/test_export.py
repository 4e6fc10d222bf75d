import pandas as pd

from core.export import safe_csv


def test_formula_cells_are_escaped_numbers_kept(tmp_path):
    df = pd.DataFrame({"patient_id": ["=HYPERLINK(\"x\")", "+1+2", "-cmd", "@SUM(A1)", "ok", "-1.5"],
                       "risk": [0.1, -0.2, 0.3, 0.4, 0.5, 0.6], "=evil": [1, 2, 3, 4, 5, 6]})
    path = safe_csv(df, tmp_path / "x.csv")
    back = pd.read_csv(path, dtype={"patient_id": str})
    assert back["patient_id"].tolist() == ["'=HYPERLINK(\"x\")", "'+1+2", "'-cmd", "'@SUM(A1)", "ok", "-1.5"]
    assert back["risk"].tolist() == [0.1, -0.2, 0.3, 0.4, 0.5, 0.6]          # numbers stay numbers
    assert "'=evil" in back.columns
    assert safe_csv(df.head(1)).startswith("patient_id,risk")
