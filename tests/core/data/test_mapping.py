"""core.data.mapping: a new source's variables matched with a run's, one to one, only where unambiguous."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from core.data.mapping import VariableMapping, apply_mapping, match_variables, parse_mapping
from core.data.plausibility import canonical_name
from core.exceptions import CohortError
from tests.helpers.cohorts import make_tiny_cohort

#: the variables of the PhysioNet 2012 set A (time series and static) and of the 2019 hourly file.
P2012 = ("HR MAP SysABP DiasABP Urine Weight NISysABP NIDiasABP NIMAP Temp GCS RespRate FiO2 MechVent pH PaCO2 PaO2 "
         "HCT K Platelets Creatinine BUN HCO3 Mg Na Glucose WBC SaO2 Lactate ICUType Height Gender Age Bilirubin AST "
         "ALT ALP Albumin TroponinT TroponinI Cholesterol").split()
P2019 = ("HR O2Sat Temp SBP MAP DBP Resp EtCO2 BaseExcess HCO3 FiO2 pH PaCO2 SaO2 AST BUN Alkalinephos Calcium "
         "Chloride Creatinine Bilirubin_direct Glucose Lactate Magnesium Phosphate Potassium Bilirubin_total "
         "TroponinI Hct Hgb PTT WBC Fibrinogen Platelets Age Gender").split()


def test_the_2019_names_are_matched_with_a_2012_run():
    m = match_variables(P2019, P2012)
    assert m.as_dict() == {"Hct": "HCT", "SBP": "SysABP", "DBP": "DiasABP", "Resp": "RespRate", "Potassium": "K",
                           "Magnesium": "Mg", "Bilirubin_total": "Bilirubin", "Alkalinephos": "ALP"}
    assert dict((new, how) for new, _, how in m.renamed)["Hct"] == "spelling"
    # SBP fits the run's SysABP and NISysABP: it goes to the canonical one, and the other is named
    assert ("SBP", ("NISysABP",)) in m.also_fit
    assert "SBP -> SysABP (synonym)" in m.lines()
    assert m.sentence().startswith("8 variable(s) of these data were matched with the run's: ")
    assert not m.ambiguous


def test_two_candidates_for_one_run_variable_are_left_for_the_user():
    m = match_variables(["O2Sat", "SaO2_arterial", "HR"], ["SpO2", "HR"])
    assert canonical_name("SaO2_arterial") is None            # not a synonym: only O2Sat fits
    assert m.as_dict() == {"O2Sat": "SpO2"}
    m = match_variables(["O2Sat", "SpO2"], ["SaO2"])          # both are SaO2's synonyms: no guess
    assert m.as_dict() == {}
    assert m.ambiguous == ((("SaO2",), ("O2Sat", "SpO2")),)
    assert "choose one (--map O2Sat=SaO2)" in m.lines()[0]


def test_mimic_style_and_other_spellings():
    m = match_variables(["Heart Rate", "Non Invasive Blood Pressure diastolic", "Calcium, Total", "sex", "glucose"],
                        ["HR", "DiasABP", "Calcium", "Gender", "Glucose"])
    assert m.as_dict() == {"glucose": "Glucose", "Heart Rate": "HR", "Non Invasive Blood Pressure diastolic": "DiasABP",
                           "Calcium, Total": "Calcium", "sex": "Gender"}


def test_the_users_mapping_wins_and_is_checked():
    m = match_variables(["DBP", "NBPd"], ["DiasABP", "NIDiasABP"], {"NBPd": "NIDiasABP", "DBP": "DiasABP"})
    assert [(n, o, h) for n, o, h in m.renamed] == [("DBP", "DiasABP", "you"), ("NBPd", "NIDiasABP", "you")]
    with pytest.raises(CohortError, match="'XX', which is not a variable of these data"):
        match_variables(["DBP"], ["DiasABP"], {"XX": "DiasABP"})
    with pytest.raises(CohortError, match="'Foo', which is not a variable of the run"):
        match_variables(["DBP"], ["DiasABP"], {"DBP": "Foo"})
    with pytest.raises(CohortError, match="both 'DBP' and 'NBPd' onto the run's 'DiasABP'"):
        match_variables(["DBP", "NBPd"], ["DiasABP"], {"DBP": "DiasABP", "NBPd": "DiasABP"})
    with pytest.raises(CohortError, match="already have a variable 'HR'"):
        match_variables(["HR", "Pulse"], ["HR"], {"Pulse": "HR"})


@pytest.mark.parametrize("items, message", [(["DBP"], "is not NEW=RUN"), (["=DiasABP"], "is not NEW=RUN"),
                                            (["DBP=A", "DBP=B"], "names 'DBP' twice")])
def test_bad_map_arguments_say_how_to_write_them(items, message):
    with pytest.raises(CohortError, match=message):
        parse_mapping(items)


def test_parse_mapping():
    assert parse_mapping([" DBP = DiasABP ", "Hct=HCT"]) == {"DBP": "DiasABP", "Hct": "HCT"}
    assert parse_mapping(None) == {}


def test_apply_mapping_renames_series_and_static_and_leaves_the_cohort_alone():
    c = make_tiny_cohort(12)
    before = c.fingerprint()
    renamed = apply_mapping(c, {"HR": "Heart Rate", "Age": "age_years"})
    assert renamed is not c
    assert set(renamed.series_variables) == {"Heart Rate", "Temp", "Lactate"}
    assert renamed.static_variables == ["age_years"]
    assert list(renamed.catalogue["variable"]).count("Heart Rate") == 1
    assert c.fingerprint() == before and "HR" in c.series_variables            # the original is unchanged
    back = apply_mapping(renamed, match_variables(renamed.series_variables + renamed.static_variables,
                                                  c.series_variables + c.static_variables, {"age_years": "Age"}))
    assert back.series_variables == c.series_variables and back.static_variables == c.static_variables
    assert (back.events["value"].to_numpy() == c.events["value"].to_numpy()).all()
    assert apply_mapping(c, VariableMapping()) is c


_names = st.sampled_from(P2012 + P2019 + ["Heart Rate", "heart_rate", "SpO2", "NBPs", "Sex", "X1", "x_1"])


@settings(max_examples=200, deadline=None)
@given(st.lists(_names, max_size=25), st.lists(_names, max_size=25))
def test_pairs_are_one_to_one_and_never_duplicate_a_name(data, run):
    m = match_variables(data, run)
    new = [n for n, _, _ in m.renamed]
    old = [o for _, o, _ in m.renamed]
    assert len(set(new)) == len(new) and len(set(old)) == len(old)
    assert not set(old) & set(data)                    # a name the data already have is never a target
    assert not set(new) & set(run)                     # a variable matched exactly is never renamed
    assert set(new) <= set(data) and set(old) <= set(run)
