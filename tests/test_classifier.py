"""HS-code classifier: compiled/twin parity, text rules, accuracy floors, data validation, CLI."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stream.classify as classify
from stream._backend import BACKENDS, PURE_PYTHON
from stream.classify import LOW_CONFIDENCE_PERMILLE, Classifier, _classify_py, evaluate, read_labelled
from stream.classify._tables import DEFAULT_DATA_DIR, FALLBACK_CODE, load_tables
from stream.classify._text import normalised_tokens, term_key
from stream.classify.cli import classify as classify_command

DATA = DEFAULT_DATA_DIR
HOLDOUT = DATA / "eval_holdout.tsv"
TUNE = DATA / "eval_tune.tsv"
BLIND_TUNE = DATA / "eval_blind_tune.tsv"
BLIND_HOLDOUT = DATA / "eval_blind_holdout.tsv"
# Measured on the holdout (317 titles, 132 headings): heading 1.000, chapter 1.000; tuning set 1.000.
# The floors leave a margin of a few titles for vocabulary edits; a real regression falls through.
HOLDOUT_HEADING_FLOOR = 0.985
HOLDOUT_CHAPTER_FLOOR = 0.985
TUNE_HEADING_FLOOR = 0.985
# Blind sets, written without seeing the vocabulary. The tuning half (199 titles) guided vocabulary
# work: measured 0.995. The holdout half was never looked at, title by title: its heading accuracy
# was measured once, aggregate only, after the tuning (BLIND_HOLDOUT_MEASURED), and its floor is that
# minus 0.02. Its test computes the aggregate only and must never print titles or errors.
BLIND_TUNE_HEADING_FLOOR = 0.97
BLIND_HOLDOUT_MEASURED = 0.970  # 193 of 199 titles; chapter 0.975, manual review 12.6%, confident 0.994
BLIND_HOLDOUT_HEADING_FLOOR = 0.949  # measured (193/199 = 0.9698) minus 0.02


@pytest.fixture(scope="module")
def tables():
    return load_tables()


@pytest.fixture(scope="module")
def compiled(tables):
    module = pytest.importorskip("stream.classify._classify", reason="compiled kernel not built")
    return Classifier(tables, module)


@pytest.fixture(scope="module")
def twin(tables):
    return Classifier(tables, _classify_py)


def both(compiled, twin, descriptions, categories=None):
    fast_codes, fast_confidence = compiled.classify_batch(descriptions, categories)
    slow_codes, slow_confidence = twin.classify_batch(descriptions, categories)
    assert fast_codes == slow_codes
    assert fast_confidence.tolist() == slow_confidence.tolist()
    return fast_codes, fast_confidence


# --- backend guard -------------------------------------------------------------------------------

def test_compiled_kernel_is_used_unless_pure_python_is_requested():
    expected = "python" if PURE_PYTHON else "compiled"
    assert BACKENDS["classify"] == expected
    assert Classifier.load().backend == expected
    assert classify.kernel_module.__name__.endswith("_py") == PURE_PYTHON


# --- parity --------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [HOLDOUT, TUNE, BLIND_TUNE], ids=["holdout", "tune", "blind-tune"])
def test_parity_on_evaluation_sets(compiled, twin, path):
    rows = read_labelled(path)
    titles = [title for _, _, title in rows]
    both(compiled, twin, titles, [category for _, category, _ in rows])
    both(compiled, twin, titles)
    both(compiled, twin, [title.upper() for title in titles], ["apparel"] * len(titles))


CATEGORY_NAMES = [None, "", "apparel", "electronics", "Bags", " cosmetics ", "одежда", "unknown-category"]
VOCABULARY_WORDS = ["case", "for", "для", "phone", "t-shirt", "чехол", "часы", "gold", "925", "batteries",
                    "сумки", "women's", "dress", "shirt", "led", "strip", "watch", "band", "ΑΣ", "İ"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.text(max_size=80),
            st.text(alphabet=st.sampled_from(" .,;:!?-_/()[]{}'\"\t\n\r"), max_size=40),
            st.lists(st.sampled_from(VOCABULARY_WORDS), max_size=12).map(" ".join),
            st.text(alphabet=st.characters(min_codepoint=0x400, max_codepoint=0x4FF), max_size=60),
            st.just(""),
        ),
        max_size=25,
    ),
    st.data(),
)
def test_parity_on_random_text(compiled, twin, descriptions, data):
    categories = data.draw(st.lists(st.sampled_from(CATEGORY_NAMES), min_size=len(descriptions),
                                    max_size=len(descriptions)))
    codes, confidence = both(compiled, twin, descriptions, categories)
    assert len(codes) == len(descriptions)
    assert all(0 <= value <= 1000 for value in confidence.tolist())


def test_parity_on_very_long_and_odd_strings(compiled, twin):
    long_title = " ".join(["silicone case for iphone gold 925 watch band футболка"] * 5000)
    descriptions = [long_title, "x" * 200_000, "!" * 10_000, "\x00\x01\x7f", "é" * 999, "\ud800 lone surrogate",
                    "line one\nline two", "\n", "a\r\nb"]
    codes, confidence = both(compiled, twin, descriptions)
    assert confidence[1] == confidence[2] == 0


# --- text rules ----------------------------------------------------------------------------------

@pytest.mark.parametrize("variants", [
    ["battery", "batteries"], ["hoodie", "hoodies"], ["dress", "dresses"], ["watch", "watches"],
    ["shoe", "shoes"], ["toy", "toys"], ["jersey", "jerseys"], ["lens", "lenses"], ["box", "boxes"],
    ["сумка", "сумки", "сумку"], ["женская", "женские", "женский"], ["наушники", "наушников"],
    ["платье", "платья"],
])
def test_inflected_forms_share_one_stem(variants):
    assert len({tuple(normalised_tokens(word.encode())) for word in variants}) == 1


@pytest.mark.parametrize("word", ["dress", "glass", "bus", "iphone15", "925", "toy", "мяч"])
def test_stemming_leaves_short_and_protected_words(word):
    assert normalised_tokens(word.encode()) == [word.encode()]


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\n", blacklist_categories=("Cs",))),
                max_size=6))
def test_lowercasing_the_joined_batch_equals_lowercasing_each_title(descriptions):
    # _pack lowercases the joined buffer once; the newline must stop context rules (Greek final sigma)
    assert "\n".join(descriptions).lower() == "\n".join(d.lower() for d in descriptions)


def test_terms_are_tokenised_like_titles():
    assert term_key("T-Shirt") == term_key("t shirts")
    assert term_key("T-Shirt")[1] == 2
    with pytest.raises(ValueError):
        term_key("hot water bottle")
    with pytest.raises(ValueError):
        term_key("--")


# --- behaviour -----------------------------------------------------------------------------------

def test_bigram_outweighs_its_words(compiled, twin):
    codes, _ = both(compiled, twin, ["phone", "phone case", "shirt", "t-shirt", "watch", "smart watch"])
    assert [code[:4] for code in codes] == ["8517", "3926", "6205", "6109", "9102", "8517"]


def test_context_marker_halves_what_follows(compiled, twin):
    # "iphone" (80) outweighs a bare "case" (60) unless it comes after "for"
    codes, _ = both(compiled, twin, ["case iphone", "case for iphone", "чехол для iphone"])
    assert codes[0][:4] == "8517"
    assert codes[1][:4] == "4202"
    assert codes[2][:4] == "3926"


def test_category_prior_breaks_a_close_call(compiled, twin):
    codes, _ = both(compiled, twin, ["case", "case"], ["bags", "electronics"])
    assert [code[:4] for code in codes] == ["4202", "3926"]


def test_category_aliases_and_case_are_accepted(compiled, twin):
    assert compiled.classify_one("case", "Luggage") == compiled.classify_one("case", "bags")
    assert compiled.classify_one("case", "сумки") == compiled.classify_one("case", "bags")


def test_no_match_gives_zero_confidence_and_fallback(compiled, twin):
    codes, confidence = both(compiled, twin, ["", "qwertyuiop", "!!!"])
    assert codes == [FALLBACK_CODE] * 3
    assert confidence.tolist() == [0, 0, 0]
    code, permille = compiled.classify_one("zzzz", "footwear")
    assert permille == 0 and code.startswith("64")


def test_product_noun_outweighs_material_words(compiled, twin):
    # "gold", "leather", "edition" are modifiers: they count only for headings a product noun names
    codes, _ = both(compiled, twin, ["Nescafe Gold instant coffee 200 g", "gold ring 585", "gold",
                                     "leather gloves", "PlayStation 5 Digital Edition", "Часы наручные золотые 585"])
    assert [code[:4] for code in codes] == ["2101", "7113", "7113", "4203", "9504", "9101"]


def test_category_prior_only_helps_headings_the_title_names(compiled, twin):
    codes, _ = both(compiled, twin, ["Engine Air Filter", "Motor Oil 5W-30 4L", "Camping Tent 4 Person",
                                     "Digital Kitchen Scale"], ["auto", "auto", "sports", "kitchen"])
    assert [code[:4] for code in codes] == ["8421", "2710", "6306", "8423"]


def test_modifier_only_titles_still_classify(compiled, twin):
    codes, confidence = both(compiled, twin, ["leather", "men women"], ["bags", None])
    assert codes[0][:4] == "4202" and confidence[0] > 0
    assert confidence[1] > 0


def test_repeated_keywords_count_once(compiled):
    assert compiled.classify_one("case") == compiled.classify_one("case case case case")


def test_newline_inside_description_acts_as_a_space(compiled, twin):
    codes, confidence = both(compiled, twin, ["t-\nshirt cotton", "dress"])
    assert (codes[0], confidence[0]) == tuple(v[0] for v in twin.classify_batch(["t- shirt cotton"]))


def test_classify_one_matches_the_batch(compiled):
    codes, confidence = compiled.classify_batch(["Men's cotton T-shirt", "Silicone case"], ["apparel", None])
    assert compiled.classify_one("Men's cotton T-shirt", "apparel") == (codes[0], confidence[0])
    assert compiled.classify_one("Silicone case") == (codes[1], confidence[1])


def test_returned_codes_are_4_to_10_digits(compiled):
    rows = read_labelled(TUNE)
    codes, confidence = compiled.classify_batch([title for _, _, title in rows])
    assert all(code.isdigit() and 4 <= len(code) <= 10 for code in codes)
    assert confidence.dtype == np.int32


def test_mismatched_category_count_is_rejected(compiled):
    with pytest.raises(ValueError):
        compiled.classify_batch(["a", "b"], ["apparel"])


def test_empty_batch(compiled, twin):
    codes, confidence = both(compiled, twin, [])
    assert codes == [] and len(confidence) == 0


@pytest.mark.parametrize("kernel_name", ["compiled", "twin"])
def test_kernel_rejects_bad_offsets_and_categories(request, kernel_name):
    classifier = request.getfixturevalue(kernel_name)
    good_categories = np.array([-1], dtype=np.int32)
    with pytest.raises(ValueError, match="outside"):
        classifier.classify_packed(b"abc", np.array([0, 10]), good_categories)
    with pytest.raises(ValueError, match="decrease"):
        classifier.classify_packed(b"abc", np.array([2, 1]), good_categories)
    with pytest.raises(ValueError, match="category"):
        classifier.classify_packed(b"abc", np.array([0, 3]), np.array([10_000]))
    with pytest.raises(ValueError, match="entries"):
        classifier.classify_packed(b"abc", np.array([0, 1, 3]), good_categories)
    codes, confidence = classifier.classify_packed(b"abc", np.array([0, 3]), good_categories)
    assert len(codes) == len(confidence) == 1


def test_load_is_cached():
    assert Classifier.load() is Classifier.load(DATA)


# --- accuracy ------------------------------------------------------------------------------------
# on the backend this run uses (the twin under CUSTOMS_STREAM_PUREPYTHON=1): never skipped


@pytest.fixture(scope="module")
def default():
    return Classifier.load()


def test_holdout_accuracy_floor(default):
    report = evaluate(HOLDOUT, default)
    assert report["titles"] >= 200 and report["headings"] >= 60
    assert report["heading_accuracy"] >= HOLDOUT_HEADING_FLOOR, report["errors"]
    assert report["chapter_accuracy"] >= HOLDOUT_CHAPTER_FLOOR, report["errors"]


def test_tuning_set_accuracy_floor(default):
    report = evaluate(TUNE, default)
    assert report["heading_accuracy"] >= TUNE_HEADING_FLOOR, report["errors"]


def test_blind_tuning_set_accuracy_floor(default):
    report = evaluate(BLIND_TUNE, default)
    assert report["heading_accuracy"] >= BLIND_TUNE_HEADING_FLOOR, report["errors"]


def test_blind_holdout_accuracy_floor(default):
    # aggregate only: the holdout's titles and errors stay unseen, so no error list in the message
    accuracy = evaluate(BLIND_HOLDOUT, default)["heading_accuracy"]
    assert accuracy >= BLIND_HOLDOUT_HEADING_FLOOR, f"blind holdout heading accuracy {accuracy:.3f}"


def test_confident_answers_are_mostly_right(default):
    report = evaluate(HOLDOUT, default)
    assert report["confident_heading_accuracy"] >= 0.98
    assert report["manual_review_share"] <= 0.25
    assert 0 < LOW_CONFIDENCE_PERMILLE < 1000


def test_evaluation_sets_do_not_share_titles():
    holdout = {title.lower() for _, _, title in read_labelled(HOLDOUT)}
    tune = {title.lower() for _, _, title in read_labelled(TUNE)}
    assert not holdout & tune


# --- data validation -----------------------------------------------------------------------------

@pytest.fixture()
def data_copy(tmp_path):
    target = tmp_path / "data"
    shutil.copytree(DATA, target)
    return target


def append(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")


@pytest.mark.parametrize("bad_row", [
    "6109\t\tshirt-like\t0",          # weight out of range
    "6109\t\tshirt-like\t1001",
    "6109\t\tshirt-like\tten",
    "1234\t\tshirt-like\t10",         # unknown heading
    "6109\t6205200000\tshirt-like\t10",  # code under another heading
    "6109\t\tone two three\t10",      # more than a bigram
    "6109\t\tt-shirts\t10",           # same term twice for one heading (after normalisation)
    "6109\t\tshirt-like",              # missing field
])
def test_loader_rejects_bad_vocabulary_rows(data_copy, bad_row):
    append(data_copy / "vocabulary.tsv", bad_row)
    with pytest.raises(ValueError, match="vocabulary.tsv"):
        load_tables(data_copy)


def test_loader_rejects_a_modifier_missing_from_the_vocabulary(data_copy):
    append(data_copy / "modifiers.tsv", "zorblax")
    with pytest.raises(ValueError, match="modifiers.tsv"):
        load_tables(data_copy)


def test_loader_rejects_unknown_category_alias(data_copy):
    append(data_copy / "category_aliases.tsv", "clobber\tno-such-category")
    with pytest.raises(ValueError, match="category_aliases.tsv"):
        load_tables(data_copy)


def test_a_custom_data_directory_changes_results(data_copy):
    append(data_copy / "vocabulary.tsv", "9503\t\tzorblax\t500")
    custom = Classifier.load(data_copy)
    assert custom.classify_one("zorblax")[0].startswith("9503")
    assert Classifier.load().classify_one("zorblax")[1] == 0


# --- CLI -----------------------------------------------------------------------------------------

def test_cli_writes_one_json_line_per_description():
    result = CliRunner().invoke(classify_command, [], input="Men's cotton T-shirt\n\nЧехол для iPhone 15\n")
    assert result.exit_code == 0, result.output
    rows = [orjson.loads(line) for line in result.stdout_bytes.splitlines()]
    assert [row["description"] for row in rows] == ["Men's cotton T-shirt", "", "Чехол для iPhone 15"]
    assert rows[0]["hs_code"].startswith("6109") and rows[2]["hs_code"].startswith("3926")
    assert rows[1] == {"description": "", "hs_code": FALLBACK_CODE, "confidence": 0.0}
    assert all(isinstance(row["confidence"], float) and 0 <= row["confidence"] <= 1 for row in rows)
    permille = Classifier.load().classify_one("Men's cotton T-shirt")[1]
    assert rows[0]["confidence"] == permille / 1000


def test_cli_category_and_file_argument(tmp_path):
    source = tmp_path / "titles.txt"
    source.write_text("case\n", encoding="utf-8")
    bags = CliRunner().invoke(classify_command, [str(source), "--category", "bags"])
    electronics = CliRunner().invoke(classify_command, [str(source), "--category", "electronics"])
    assert orjson.loads(bags.stdout_bytes)["hs_code"].startswith("4202")
    assert orjson.loads(electronics.stdout_bytes)["hs_code"].startswith("3926")


def test_cli_batches_long_input():
    lines = [f"usb cable {i}" for i in range(25_000)]
    result = CliRunner().invoke(classify_command, [], input="\n".join(lines) + "\n")
    assert result.exit_code == 0
    output = result.stdout_bytes.splitlines()
    assert len(output) == 25_000
    assert orjson.loads(output[-1])["description"] == "usb cable 24999"


def test_cli_evaluate_reports_accuracy():
    result = CliRunner().invoke(classify_command, ["--evaluate", str(TUNE)])
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout_bytes)
    assert report["titles"] == len(read_labelled(TUNE))
    assert report["heading_accuracy"] >= TUNE_HEADING_FLOOR


def test_cli_runs_through_the_main_entry_point():
    completed = subprocess.run([sys.executable, "-m", "stream", "classify"], input="Yoga mat non slip\n".encode(),
                               capture_output=True, check=True, timeout=60)
    row = orjson.loads(completed.stdout)
    assert row["hs_code"].startswith("9506")
