"""The offline expander, the prompt template and trigger matching, pure."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.jobs.dispatcher import matches
from adapters.processors.offline_expander import expand, key_terms
from adapters.processors.text_expansion import documents, render_prompt
from domain.ids import new_id
from domain.processor import Processor, check_limits

words = st.text(alphabet=st.characters(whitelist_categories=("Ll", "Lu", "Nd")), min_size=1, max_size=12)


def test_key_terms_skip_function_words_and_repeats_in_order() -> None:
    assert key_terms("Hero discovers a mysterious artifact; the hero keeps the ARTIFACT.") == [
        "Hero", "discovers", "mysterious", "artifact", "keeps"]


@settings(max_examples=200, deadline=None)
@given(st.lists(words, min_size=1, max_size=30), st.sampled_from([" ", ". ", ", ", "\n"]))
def test_the_expansion_carries_every_key_term_and_is_deterministic(parts: list[str], sep: str) -> None:
    outline = sep.join(parts)
    text = expand(outline, "Title")
    for term in key_terms(outline):
        assert term in text
    assert expand(outline, "Title") == text


def test_the_prompt_template_replaces_only_its_two_placeholders() -> None:
    assert render_prompt("Write {title} from {outline}. {not a field}", "the outline", "T") == (
        "Write T from the outline. {not a field}")
    assert render_prompt("No placeholder", "the outline", None) == "No placeholder\n\nthe outline"
    assert render_prompt(None, "o", None) == "Outline:\no"


def test_the_output_document_replaces_the_outline_with_content_or_keeps_it_as_a_fallback() -> None:
    first, second = documents({"title": "T", "outline": "o", "x": 1}, "text")
    assert first == {"title": "T", "x": 1, "content": "text"}
    assert second == {"title": "T", "outline": "o", "x": 1, "content": "text"}


def processor(triggers: list[dict], input_schema: str | None = None) -> Processor:  # type: ignore[type-arg]
    return Processor.register(new_id(), "p", "js-transform", input_schema, None, {"source": "s"}, triggers,
                              check_limits(None))


def test_trigger_matching() -> None:
    bucket = new_id()
    p = processor([{"on": "blob.created", "bucket_id": bucket, "schema_id": "s@1.0.0"}])
    blob = {"schema_id": "s@1.0.0", "bucket_ids": [bucket], "source": None}
    assert matches(p, "blob.created", blob) is not None
    assert matches(p, "blob.updated", blob) is None
    assert matches(p, "blob.created", {**blob, "bucket_ids": []}) is None
    assert matches(p, "blob.created", {**blob, "schema_id": "s@2.0.0"}) is None
    assert matches(p, "blob.created", {**blob, "source": {"processor_id": p.id_str, "depth": 1}}) is None
    assert matches(p, "blob.created", {**blob, "source": {"processor_id": new_id(), "depth": 1}}) is not None
    typed = processor([{"on": "blob.created", "bucket_id": None, "schema_id": None}], input_schema="s@1.0.0")
    assert matches(typed, "blob.created", {**blob, "schema_id": "other@1.0.0"}) is None
